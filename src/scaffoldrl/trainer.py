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
   ``env_mask`` and each token's advantage is scaled by its ``token_weights``.
   To it :meth:`ScaffoldTrainer.auxiliary_loss` adds γ·NLL of the hint tokens,
   from the log-probabilities of the *same* forward pass.
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
from .domain import completion_text
from .hints import HINTED, OFF_POLICY, ON_POLICY, UNITS, HintPolicy, PSSConfig, Reference, RolloutPlan, SparklePSS, response_prefix
from .records import Problem
from .rewards import correctness_reward
from .verify import get_grader

logger = logging.getLogger(__name__)

POLICIES = ("none", "pss", "seele")
KINDS = (ON_POLICY, HINTED, OFF_POLICY)  # a completion's kind is stored as its index here
POLICY_STATE = "hint_policy.json"  # written into every checkpoint folder


@dataclass
class ScaffoldConfig(GRPOConfig):
    """TRL's ``GRPOConfig`` plus hint scaffolding. The group size is TRL's ``num_generations`` (m·n)."""

    policy: str = field(default="none", metadata={
        "help": "Hint policy: 'none' (plain GRPO), 'pss' (SPARKLE's prompt-side levels 0..K, each its own "
                "row and group) or 'seele' (response-prefix hints at an adaptive per-question rate)."})
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

    def __post_init__(self):
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


def make_policy(config: ScaffoldConfig) -> HintPolicy:
    """The hint policy a config names."""
    if config.policy == "pss":
        return SparklePSS(PSSConfig(levels=config.pss_levels, hide_final_step=config.pss_hide_final_step,
                                    resplit=config.pss_resplit))
    if config.policy == "seele":
        return SeeleAdaptive(AdaptiveConfig(target=config.target))
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

    Hooks for further losses (the baselines): every completion carries its
    ``kinds`` code (index into :data:`KINDS`), ``token_weights`` that scale its
    per-token advantage, ``hint_mask`` (forced hint tokens) and ``env_mask``
    (tokens under TRL's policy gradient) into ``inputs`` of the loss; override
    :meth:`auxiliary_loss` to add terms from the per-token log-probabilities
    and entropies of the loss's own forward pass.
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
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are using 'rollout_func'")
            super().__init__(model=model, reward_funcs=reward_funcs or [correctness_reward], args=args,
                             train_dataset=Dataset.from_list([r.to_dict() for r in rowset.rows]),
                             processing_class=processing_class, rollout_func=self._rollout, **kwargs)

    # -- rollouts -------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        """TRL's generation and scoring, with the rows kept for the rollout and its per-token fields turned into tensors."""
        self._rows = inputs
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
                out["env_mask"][slot] = [0] * len(forced) + [1] * len(ids)
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
        """Grade one round and tell the policy each question's accuracy at the rate it got."""
        texts = self._tokenizer.batch_decode([completion_ids[b.slot] for b in batch], skip_special_tokens=True)
        verdicts = self.grader.grade_batch([(t, str(heads[b.question]["answer"])) for t, b in zip(texts, batch)])
        by_question: dict[int, list[tuple[RolloutPlan, bool]]] = {}
        for b, verdict in zip(batch, verdicts):
            by_question.setdefault(b.question, []).append((b.plan, verdict.correct is True))
        for j, results in by_question.items():
            row = heads[j]
            correct = [float(c) for _, c in results]
            if self.hint_policy.placement == "prompt":  # the hint is in the row: its level is the rate
                question, rate = row["id"], row["level"] / max(1, row["levels"] - 1)
            else:
                question, rate = row["problem_id"], sum(p.rate for p, _ in results) / len(results)
            self.hint_policy.observe(question, rate, sum(correct) / len(correct), correct)

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
        if self._captured is not None:  # inside _compute_loss: keep the forward pass for auxiliary_loss
            self._captured.append(output)
        return output

    def _compute_loss(self, model, inputs):
        """TRL's loss with per-token advantages A·w, plus :meth:`auxiliary_loss` on the same forward pass."""
        weights = inputs["token_weights"]
        if not bool(torch.all(weights == 1.0)):  # unweighted batches keep TRL's (B,) advantages bit for bit
            advantages = inputs["advantages"]
            inputs = {**inputs, "advantages": (advantages if advantages.dim() == 2 else advantages[:, None]) * weights}
        self._captured = []
        try:
            loss = super()._compute_loss(model, inputs)
            (per_token_logps, entropies, _), = self._captured
        finally:
            self._captured = None
        return loss + self.auxiliary_loss(inputs, per_token_logps, entropies)

    def auxiliary_loss(self, inputs: dict[str, Any], per_token_logps: torch.Tensor,
                       entropies: torch.Tensor) -> torch.Tensor:
        """Loss terms beyond TRL's: here γ · mean NLL over the forced hint tokens of the micro-batch.

        ``per_token_logps`` and ``entropies`` are (B, T) over completion tokens,
        from the forward pass TRL's loss just ran (no extra pass). Scaled for
        gradient accumulation like TRL's own terms.
        """
        hint = inputs["hint_mask"]
        tokens = hint.sum()
        if self.args.imitation_coef == 0 or tokens == 0:
            return per_token_logps.new_zeros(())
        nll = -(per_token_logps * hint).sum() / tokens
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["hint/imitation_nll"].append(nll.item())
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1
        return self.args.imitation_coef * nll / accumulation

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
