"""Scaffolded GRPO on TRL: hint policies, multi-round rollouts, masked hints and the imitation term.

One training step, as this file runs it inside TRL's ``GRPOTrainer``:

1. TRL's sampler gives each process whole groups: every question repeated
   G = ``num_generations`` times. :meth:`ScaffoldTrainer._generate_and_score_completions`
   keeps those dataset rows, because TRL's ``rollout_func`` receives prompts only.
2. :meth:`ScaffoldTrainer._rollout` (the ``rollout_func``) runs m = ``rounds``
   rounds of n = G/m rollouts per question. In each round the hint policy plans
   every rollout (on-policy, hinted with the first l units of the reference
   solution, or the whole reference trace); a hint is forced as the start of
   the response and the model continues it; the grader scores the round and
   ``policy.observe`` refits (SEELE) before the next round. All m·n completions
   of a question come back as *one* group.
3. TRL scores the group with the reward functions; advantages are r − mean over
   the m·n (Dr.GRPO with ``scale_rewards="none"``, or divided by the std).
4. The loss (:meth:`ScaffoldTrainer._compute_loss`) is TRL's clipped policy
   gradient over generated tokens only: forced tokens are masked out through
   ``env_mask`` (Prefix-RFT's prefixes stay in, only their highest-entropy
   tokens keeping an advantage) and each token's advantage is scaled by its
   ``token_weights``. To it :meth:`ScaffoldTrainer.auxiliary_loss` adds γ·NLL
   of the hint tokens and LUFFY's shaped term on off-policy tokens, from the
   log-probabilities of the *same* forward pass.
5. ``policy.end_step()`` closes the step: its statistics are logged and its
   per-question state is saved with every checkpoint and restored on resume.

The TRL hooks used here are private (``rollout_func``, ``env_mask``,
``_generate_and_score_completions``, ``_generate_single_turn``,
``_tokenize_prompts``, ``_get_per_token_logps_and_entropies``,
``_compute_loss``, ``_log_metric``, ``_save_checkpoint``,
``_load_optimizer_and_scheduler``): TRL's minor version is pinned and
``tests/test_trainer.py`` fails loudly when one of them moves.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOConfig, GRPOTrainer

from .adaptive import AdaptiveConfig, SeeleAdaptive
from .baselines import LuffyOffPolicy, PrefixRFTHints, UFTBinomialHints, shaped_ratio
from .domain import completion_text
from .hints import HINTED, OFF_POLICY, ON_POLICY, UNITS, HintPolicy, PSSConfig, Reference, RolloutPlan, SparklePSS, response_prefix
from .records import Problem
from .rewards import correctness_reward
from .verify import get_grader

logger = logging.getLogger(__name__)

POLICIES = ("none", "pss", "seele", "uft", "luffy", "prefix_rft")
SCHEDULED = ("uft", "prefix_rft")  # policies whose hints follow a schedule over training steps
GUIDED = ("luffy", "prefix_rft")  # policies that give the reference to some rollouts of each group
OFF_POLICY_LOSS_TYPES = ("grpo", "dr_grpo", "dapo")  # TRL reductions the off-policy term reproduces
KINDS = (ON_POLICY, HINTED, OFF_POLICY)  # a completion's kind is stored as its index here
POLICY_STATE = "hint_policy.json"  # written into every checkpoint folder


@dataclass
class ScaffoldConfig(GRPOConfig):
    """TRL's ``GRPOConfig`` plus hint scaffolding. The group size is TRL's ``num_generations`` (m·n)."""

    policy: str = field(default="none", metadata={
        "help": "Hint policy: 'none' (plain GRPO), 'pss' (SPARKLE's prompt-side levels 0..K, each its own "
                "row and group), 'seele' (response-prefix hints at an adaptive per-question rate), or the "
                "baselines 'uft', 'luffy', 'prefix_rft' (scaffoldrl.baselines)."})
    rounds: int = field(default=1, metadata={
        "help": "m: sequential sampling rounds per step, each of num_generations/m rollouts per question; the "
                "policy refits between rounds. SEELE: 4 rounds x 8. Non-adaptive policies use 1."})
    hint_unit: str = field(default="steps", metadata={
        "help": "What a hint rate counts: reference 'steps' or 'tokens' (SEELE does not say which)."})
    target: float = field(default=0.5, metadata={"help": "a*: the accuracy SEELE steers every question to."})
    imitation_coef: float = field(default=0.001, metadata={
        "help": "gamma: weight of the NLL of forced hint tokens, which get no policy gradient (SEELE: 0.001)."})
    pss_levels: int = field(default=4, metadata={"help": "K: prompt-side hint levels per problem (SPARKLE: 4)."})
    pss_hide_final_step: bool = field(default=False, metadata={
        "help": "Never put the final step (the answer) in a prompt-side hint; SPARKLE reveals it at level K."})
    pss_resplit: bool = field(default=True, metadata={
        "help": "Re-split solutions with fewer steps than levels (real data); off for exact steps (embedded domain)."})
    max_prompt_tokens: int | None = field(default=None, metadata={
        "help": "Drop (and count) training rows whose prompt is longer; SPARKLE: 1024. None keeps every row."})
    hint_high: float = field(default=0.95, metadata={
        "help": "Start of the hint schedule: UFT's p_high, Prefix-RFT's first prefix fraction (95%)."})
    hint_low: float = field(default=0.05, metadata={
        "help": "End of the hint schedule: UFT's p_low (0 after hint_schedule_steps), Prefix-RFT's last fraction (5%)."})
    hint_schedule_steps: int | None = field(default=None, metadata={
        "help": "Steps the cosine hint schedule spans: UFT's T_hint, Prefix-RFT's decay. None: max_steps."})
    guided_rollouts: int = field(default=1, metadata={
        "help": "Rollouts per group given the reference: LUFFY's off-policy traces, Prefix-RFT's prefixed rollouts."})
    off_policy_gamma: float = field(default=0.1, metadata={
        "help": "gamma of LUFFY's shaped ratio f(pi) = pi/(pi + gamma) that trains off-policy tokens (LUFFY: 0.1)."})
    prefix_entropy_quantile: float = field(default=1.0, metadata={
        "help": "Fraction of the trained prefix tokens, highest entropy first, that keep their policy gradient "
                "(Prefix-RFT: 0.2); 1 keeps all."})

    def __post_init__(self):
        if self.activation_checkpointing is None:  # TRL 1.16 defaults the name transformers 5 deprecates
            self.activation_checkpointing = self.gradient_checkpointing
        super().__post_init__()
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if self.hint_unit not in UNITS:
            raise ValueError(f"hint_unit must be one of {UNITS}, got {self.hint_unit!r}")
        if self.rounds < 1 or self.num_generations % self.rounds:
            raise ValueError(f"rounds ({self.rounds}) must divide num_generations ({self.num_generations})")
        if self.rounds > 1 and self.policy != "seele":
            raise ValueError(f"rounds > 1 needs an adaptive policy ('seele'); policy {self.policy!r} uses 1 round")
        local = self.per_device_train_batch_size * self.steps_per_generation
        if local % self.num_generations:
            raise ValueError(
                f"each process must hold whole groups for its rounds: per_device_train_batch_size x "
                f"steps_per_generation ({local}) must be a multiple of num_generations ({self.num_generations})")
        if self.policy in SCHEDULED and self.schedule_steps < 1:
            raise ValueError(f"policy {self.policy!r} needs hint_schedule_steps or max_steps for its hint schedule")
        if self.policy in GUIDED and not 1 <= self.guided_rollouts < self.num_generations:
            raise ValueError(f"guided_rollouts ({self.guided_rollouts}) must leave an unguided rollout in each "
                             f"group of {self.num_generations}")
        if self.policy == "luffy" and self.loss_type not in OFF_POLICY_LOSS_TYPES:
            raise ValueError(f"LUFFY's off-policy term is reduced like TRL's loss only for loss_type in "
                             f"{OFF_POLICY_LOSS_TYPES}, got {self.loss_type!r}")
        if not 0.0 < self.prefix_entropy_quantile <= 1.0:
            raise ValueError(f"prefix_entropy_quantile must be in (0, 1], got {self.prefix_entropy_quantile}")

    @property
    def schedule_steps(self) -> int:
        """The horizon of the UFT and Prefix-RFT hint schedules."""
        return self.hint_schedule_steps if self.hint_schedule_steps is not None else self.max_steps


def make_policy(config: ScaffoldConfig) -> HintPolicy:
    """The hint policy a config names."""
    if config.policy == "pss":
        return SparklePSS(PSSConfig(levels=config.pss_levels, hide_final_step=config.pss_hide_final_step,
                                    resplit=config.pss_resplit))
    if config.policy == "seele":
        return SeeleAdaptive(AdaptiveConfig(target=config.target))
    if config.policy == "uft":
        return UFTBinomialHints(config.hint_high, config.hint_low, config.schedule_steps, seed=config.seed)
    if config.policy == "luffy":
        return LuffyOffPolicy(config.guided_rollouts)
    if config.policy == "prefix_rft":
        return PrefixRFTHints(config.hint_high, config.hint_low, config.schedule_steps, config.guided_rollouts)
    return HintPolicy()


class _Rollout(NamedTuple):
    """One rollout of a round: where it goes in the group, its question, its plan and its forced tokens."""

    slot: int
    question: int
    plan: RolloutPlan
    forced: list[int]


class ScaffoldTrainer(GRPOTrainer):
    """GRPO with hint scaffolding: TRL's trainer with our rollouts and two additions to its loss.

    The training rows are built from ``problems`` by the hint policy (one row
    per problem, or one per prompt-side level for PSS); the problems' steps are
    the reference solutions hints are cut from. ``reward_funcs`` default to
    correctness by the shared grader. Pass ``model`` as a saved path: with
    ``beta > 0`` TRL rebuilds the reference model from it.

    Hooks for further losses (the baselines use them): every completion carries
    its ``kinds`` code (index into :data:`KINDS`), ``token_weights`` that scale
    its per-token advantage, ``hint_mask`` (forced hint tokens) and ``env_mask``
    (tokens under TRL's policy gradient) into ``inputs`` of the loss;
    :meth:`auxiliary_loss` adds terms from the per-token log-probabilities and
    entropies of the loss's own forward pass.
    """

    def __init__(self, model: str, args: ScaffoldConfig, problems: Sequence[Problem], processing_class,
                 reward_funcs=None, policy: HintPolicy | None = None, **kwargs):
        from datasets import Dataset

        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        self.hint_policy = policy or make_policy(args)
        self.problems = {p.id: p for p in problems}
        rowset = self.hint_policy.rows(problems, tokenizer, args.max_prompt_tokens)
        self.dropped_rows = rowset.dropped
        if rowset.dropped:
            logger.warning("dropped %d of %d rows over %d prompt tokens", len(rowset.dropped),
                           len(rowset.dropped) + len(rowset.rows), args.max_prompt_tokens)
        self.grader = get_grader()
        self._references: dict[str, Reference] = {}
        self._rows: list[dict] | None = None  # the dataset rows of the batch being generated
        self._captured: list | None = None  # inside _compute_loss: the outputs of its forward pass
        self._loss_inputs: dict | None = None  # inside _compute_loss: the inputs TRL's objective reads
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are using 'rollout_func'")
            super().__init__(model=model, reward_funcs=reward_funcs or [correctness_reward], args=args,
                             train_dataset=Dataset.from_list([r.to_dict() for r in rowset.rows]),
                             processing_class=processing_class, rollout_func=self._rollout, **kwargs)

    # -- rollouts -------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        """TRL's generation and scoring, with the rows kept for the rollout and its per-token fields turned into tensors."""
        self._rows = inputs
        with warnings.catch_warnings():  # TRL 1.16 reads a property transformers 5 deprecates; both are pinned
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            output = super()._generate_and_score_completions(inputs)
        self._rows = None
        width, device = output["completion_ids"].size(1), output["completion_ids"].device

        def per_token(key: str, dtype) -> torch.Tensor:  # right-padded with zeros like TRL's completion tensors
            values = torch.zeros(len(inputs), width, dtype=dtype)
            for i, x in enumerate(inputs):
                values[i, : len(x[key])] = torch.tensor(x[key], dtype=dtype)
            return values.to(device)

        output["hint_mask"] = per_token("hint_mask", torch.long) * output["completion_mask"]
        output["token_weights"] = per_token("token_weights", torch.float32)
        output["kinds"] = torch.tensor([KINDS.index(x["kind"]) for x in inputs], device=device)
        # LUFFY's token mean runs over on- and off-policy tokens: TRL's count (loss_type dapo) gets the off-policy ones
        off_policy = output["completion_mask"] * (output["kinds"] == KINDS.index(OFF_POLICY))[:, None]
        output["num_items_in_batch"] = output["num_items_in_batch"] + self.accelerator.gather(off_policy.sum()).sum()
        return output

    def _rollout(self, prompts: list, trainer: GRPOTrainer) -> dict[str, list]:
        """TRL's ``rollout_func``: m rounds of n rollouts per question, refitting the hint policy between rounds."""
        rows = self._rows
        if rows is None or len(rows) != len(prompts):
            raise RuntimeError("the rollout runs only inside _generate_and_score_completions")
        training = self.model.training
        group = self.num_generations if training else self.num_generations_eval
        rounds = self.args.rounds if training else 1
        n = group // rounds
        heads = rows[::group]  # one row per question
        prompt_ids = self._tokenize_prompts(prompts[::group])[0]
        step = self.state.global_step
        trained_hints = int(self.hint_policy.hints_get_policy_gradient)
        out: dict[str, list] = {key: [None] * len(prompts) for key in (
            "prompt_ids", "completion_ids", "logprobs", "env_mask", "hint_mask", "token_weights", "kind", "hint_rate")}

        for r in range(rounds):
            started = time.perf_counter()
            batch: list[_Rollout] = []
            for j, row in enumerate(heads):
                ref = self._reference(row["problem_id"])
                plans = self.hint_policy.plan(ref, step, r, n) if training else [ref.plan(0)] * n
                batch += [_Rollout(j * group + r * n + k, j, plan, self._forced_ids(row["problem_id"], ref, plan))
                          for k, plan in enumerate(plans)]
            sampled = [b for b in batch if b.plan.kind != OFF_POLICY]
            generated, logprobs = self._sample([list(prompt_ids[b.question]) + b.forced for b in sampled])
            continuation = {b.slot: (generated[i], logprobs[i] if logprobs else []) for i, b in enumerate(sampled)}

            for slot, j, plan, forced in batch:
                ids, lps = continuation.get(slot, ([], []))
                out["prompt_ids"][slot] = list(prompt_ids[j])
                out["completion_ids"][slot] = forced + list(ids)
                # vLLM's sampling log-probs; forced tokens were not sampled (None: TRL leaves them uncorrected)
                out["logprobs"][slot] = None if logprobs is None else [None] * len(forced) + list(lps)
                out["env_mask"][slot] = [trained_hints * (plan.kind == HINTED)] * len(forced) + [1] * len(ids)
                out["hint_mask"][slot] = [int(plan.kind == HINTED)] * len(forced) + [0] * len(ids)
                out["token_weights"][slot] = [1.0] * (len(forced) + len(ids))
                out["kind"][slot] = plan.kind
                out["hint_rate"][slot] = plan.rate

            if training:
                self._observe(heads, batch, out["completion_ids"])
            self._log_metric(f"rollout/round{r}_seconds", time.perf_counter() - started)

        if training:
            stats = self.hint_policy.end_step()
            self._share_rates([row["problem_id"] for row in heads])
            for name, value in (stats.metrics() if stats else {}).items():
                self._log_metric(name, value)
        if any(lp is None for lp in out["logprobs"]):
            out["logprobs"] = None  # HF generate gives none; TRL then recomputes what it needs
        return out

    def _reference(self, problem_id: str) -> Reference:
        if problem_id not in self._references:
            self._references[problem_id] = Reference(self.problems[problem_id], self.args.hint_unit, self._tokenizer)
        return self._references[problem_id]

    def _forced_ids(self, problem_id: str, ref: Reference, plan: RolloutPlan) -> list[int]:
        """The tokens a rollout starts with: none, the hint as a response prefix, or the whole reference trace."""
        encode = lambda text: self._tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
        if plan.kind == HINTED:
            return encode(response_prefix(ref.prefix(plan.units)))
        if plan.kind == OFF_POLICY:
            problem = self.problems[problem_id]
            return encode(completion_text(problem.steps, problem.answer)) + [self._tokenizer.eos_token_id]
        return []

    def _sample(self, prompts: list[list[int]]) -> tuple[list[list[int]], list | None]:
        """Continue each prompt (hint included) with TRL's configured backend: HF generate, or vLLM server/colocate.

        vLLM's server mode samples each distinct prompt once with ``n`` copies,
        so consecutive identical prompts are passed as runs of equal length.
        """
        if not prompts and not self.use_vllm:
            return [], None
        run = _run_length(prompts)
        if self.accelerator.num_processes > 1:
            runs = self.accelerator.gather(torch.tensor([run], device=self.accelerator.device)).tolist()
            run = math.gcd(*runs)
        return self._generate_single_turn(prompts, None, {}, run)

    def _observe(self, heads: list[dict], batch: list[_Rollout], completion_ids: list) -> None:
        """Grade one round and tell the policy each question's accuracy at the rate it got.

        Accuracy and rate are the model's own rollouts'; LUFFY's reference traces
        count only in the group's reward range (whether the group has variance).
        """
        texts = self._tokenizer.batch_decode([completion_ids[b.slot] for b in batch], skip_special_tokens=True)
        verdicts = self.grader.grade_batch([(t, str(heads[b.question]["answer"])) for t, b in zip(texts, batch)])
        by_question: dict[int, list[tuple[RolloutPlan, bool]]] = {}
        for b, verdict in zip(batch, verdicts):
            by_question.setdefault(b.question, []).append((b.plan, verdict.correct is True))
        for j, results in by_question.items():
            row = heads[j]
            own = [(p, c) for p, c in results if p.kind != OFF_POLICY]
            correct = [float(c) for _, c in own]
            if self.hint_policy.placement == "prompt":  # the hint is in the row: its level is the rate
                question, rate = row["id"], row["level"] / max(1, row["levels"] - 1)
            else:
                question, rate = row["problem_id"], sum(p.rate for p, _ in own) / len(own)
            self.hint_policy.observe(question, rate, sum(correct) / len(correct), [float(c) for _, c in results])

    def _share_rates(self, question_ids: list[str]) -> None:
        """With several processes, every process learns the rates the others just refitted."""
        rates = getattr(self.hint_policy, "rates", None)
        if self.accelerator.num_processes == 1 or rates is None:
            return
        from accelerate.utils import gather_object

        for part in gather_object([{q: rates[q] for q in question_ids if q in rates}]):
            rates.update(part)

    # -- loss -----------------------------------------------------------------------
    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        output = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if self._loss_inputs is not None:  # inside _compute_loss: keep the forward pass for auxiliary_loss
            self._captured.append(output)
            self._keep_high_entropy_prefix(self._loss_inputs, output[1])
        return output

    def _compute_loss(self, model, inputs):
        """TRL's loss with per-token advantages A·w, plus :meth:`auxiliary_loss` on the same forward pass.

        ``inputs`` is copied: between TRL's forward pass and its objective (which
        reads ``advantages`` only after the forward),
        :meth:`_keep_high_entropy_prefix` may zero the advantages of low-entropy
        prefix tokens.
        """
        inputs = dict(inputs)
        weights = inputs["token_weights"]
        if not bool(torch.all(weights == 1.0)):  # unweighted batches keep TRL's (B,) advantages bit for bit
            advantages = inputs["advantages"]
            inputs["advantages"] = (advantages if advantages.dim() == 2 else advantages[:, None]) * weights
        self._captured, self._loss_inputs = [], inputs
        try:
            loss = super()._compute_loss(model, inputs)
            (per_token_logps, entropies, _), = self._captured
        finally:
            self._captured = self._loss_inputs = None
        return loss + self.auxiliary_loss(inputs, per_token_logps, entropies)

    def _keep_high_entropy_prefix(self, inputs: dict[str, Any], entropies: torch.Tensor) -> None:
        """Prefix-RFT: of the prefix tokens under the policy gradient, only the top quantile by entropy keep it.

        Training every demonstration token would be imitation; the high-entropy
        ones are where the policy is undecided. The quantile is TRL's
        (:meth:`get_high_entropy_mask`, over all processes), taken over prefix
        tokens only; the others get advantage 0, as TRL's own entropy mask
        zeroes their policy loss.
        """
        quantile = self.args.prefix_entropy_quantile
        if quantile >= 1.0:
            return
        prefix = inputs["hint_mask"] * inputs.get("tool_mask", 1)  # forced tokens under the policy gradient
        keep = self.get_high_entropy_mask(entropies, prefix, 1.0 - quantile)
        advantages = inputs["advantages"]
        advantages = advantages if advantages.dim() == 2 else advantages[:, None].expand_as(entropies)
        inputs["advantages"] = advantages.masked_fill(prefix.bool() & ~keep, 0.0)
        if prefix.any():
            mode = "train" if self.model.training else "eval"
            self._metrics[mode]["hint/prefix_trained_frac"].append((keep.sum() / prefix.sum()).item())

    def auxiliary_loss(self, inputs: dict[str, Any], per_token_logps: torch.Tensor,
                       entropies: torch.Tensor) -> torch.Tensor:
        """Loss terms beyond TRL's clipped objective: the hint imitation term and LUFFY's off-policy term.

        ``per_token_logps`` and ``entropies`` are (B, T) over completion tokens,
        from the forward pass TRL's loss just ran (no extra pass). Scaled for
        gradient accumulation like TRL's own terms.
        """
        return self._imitation_loss(inputs, per_token_logps) + self._off_policy_loss(inputs, per_token_logps)

    def _imitation_loss(self, inputs: dict[str, Any], per_token_logps: torch.Tensor) -> torch.Tensor:
        """γ · mean NLL over the forced hint tokens of the micro-batch (SEELE's and UFT's hint log-likelihood)."""
        hint = inputs["hint_mask"]
        tokens = hint.sum()
        if self.args.imitation_coef == 0 or tokens == 0:
            return per_token_logps.new_zeros(())
        nll = -(per_token_logps * hint).sum() / tokens
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["hint/imitation_nll"].append(nll.item())
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1
        return self.args.imitation_coef * nll / accumulation

    def _off_policy_loss(self, inputs: dict[str, Any], per_token_logps: torch.Tensor) -> torch.Tensor:
        """LUFFY: −A·f(π) over off-policy tokens, f(π) = π/(π + γ), reduced together with TRL's on-policy tokens.

        A reference trace has no behaviour probabilities, so no clipped ratio:
        the shaped probability takes its place (:func:`~scaffoldrl.baselines.shaped_ratio`).
        """
        off = inputs["completion_mask"] * (inputs["kinds"] == KINDS.index(OFF_POLICY))[:, None]
        if not bool(off.any()):
            return per_token_logps.new_zeros(())
        advantages = inputs["advantages"]
        advantages = advantages if advantages.dim() == 2 else advantages[:, None]
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["hint/off_policy_prob"].append(
            ((per_token_logps.detach().exp() * off).sum() / off.sum()).item())
        return self._reduce_like_trl(-shaped_ratio(per_token_logps, self.args.off_policy_gamma) * advantages, off,
                                     inputs)

    def _reduce_like_trl(self, per_token_loss: torch.Tensor, mask: torch.Tensor,
                         inputs: dict[str, Any]) -> torch.Tensor:
        """Reduce a per-token loss over ``mask`` as TRL reduces its policy loss for ``loss_type``.

        So an added term's tokens weigh exactly like the tokens of TRL's clipped
        objective: per sequence then per batch (grpo), over B · max length
        (dr_grpo), or over the generation batch's token count (dapo, whose
        count includes off-policy tokens: see :meth:`_generate_and_score_completions`).
        """
        mode = "train" if self.model.training else "eval"
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1
        total = per_token_loss * mask
        if self.loss_type == "grpo":
            return (total.sum(-1) / mask.sum(-1).clamp(min=1.0)).mean() / accumulation
        if self.loss_type == "dr_grpo":
            return total.sum() / (total.size(0) * self.max_completion_length) / accumulation
        if self.loss_type == "dapo":
            normalizer = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
            if mode == "train":
                normalizer = normalizer * accumulation / self.args.steps_per_generation
            return total.sum() / normalizer
        raise ValueError(f"no off-policy reduction for loss_type {self.loss_type!r} (use {OFF_POLICY_LOSS_TYPES})")

    # -- state across checkpoints ---------------------------------------------------
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            self.hint_policy.save_state(os.path.join(self._get_output_dir(trial=trial), folder, POLICY_STATE))

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, POLICY_STATE)
        if os.path.exists(path):
            self.hint_policy.load_state(path)
        else:
            logger.warning("%s has no %s: the hint policy starts fresh", checkpoint, POLICY_STATE)


def _run_length(prompts: list[list[int]]) -> int:
    """The length of the runs of identical consecutive prompts, when all runs are equally long; else 1."""
    if not prompts:
        return 1
    run = next((i for i, p in enumerate(prompts) if p != prompts[0]), len(prompts))
    if len(prompts) % run or any(prompts[i] != prompts[i - i % run] for i in range(len(prompts))):
        return 1
    return run
