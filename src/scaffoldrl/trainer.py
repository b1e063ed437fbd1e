"""Scaffolded GRPO on TRL: a thin ``GRPOTrainer`` subclass that runs a method's rollouts and loss hooks.

One training step, as this file runs it inside TRL's ``GRPOTrainer``:

1. TRL's sampler gives each process whole groups: every question repeated
   G = ``num_generations`` times. :meth:`ScaffoldTrainer._generate_and_score_completions`
   keeps those dataset rows, because TRL's ``rollout_func`` receives prompts only.
2. :meth:`ScaffoldTrainer._rollout` (the ``rollout_func``) runs m = ``rounds``
   rounds of n = G/m rollouts per question. In each round the method
   (:mod:`scaffoldrl.methods`) plans every rollout: on-policy, hinted with the
   first l units of the reference solution, or the whole reference trace; a
   hint is forced as the start of the response and the model continues it;
   the grader scores the round and the method observes it (SEELE refits)
   before the next round. All m·n completions of a question form *one* group.
3. TRL scores the group with the reward functions and takes advantages (r −
   mean over the m·n with ``scale_rewards="none"``, or divided by the std).
4. The loss is TRL's clipped policy gradient over generated tokens: forced
   tokens are masked out through ``env_mask`` unless the method trains them.
   On the loss's own forward pass the method may reshape the per-token
   advantages and add terms (SEELE's imitation term, LUFFY's shaped
   off-policy term) through a :class:`~scaffoldrl.methods.LossContext`.
5. The method closes the step: its statistics are logged and its state is
   saved with every checkpoint and restored on resume.

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

from .hints import HINTED, KINDS, OFF_POLICY, UNITS, Reference, RolloutPlan, fit_budget
from .methods import LossContext, Method, check_references, get_method
from .methods.base import REDUCED_LOSS_TYPES
from .records import Problem
from .rewards import correctness_reward
from .verify import get_grader

logger = logging.getLogger(__name__)

METHOD_STATE = "hint_method.json"  # written into every checkpoint folder


@dataclass
class ScaffoldConfig(GRPOConfig):
    """TRL's ``GRPOConfig`` plus hint scaffolding. The group size is TRL's ``num_generations`` (m·n)."""

    max_completion_length: int | None = field(default=512, metadata={
        "help": "Response limit in tokens, forced hint tokens included (as SEELE's 2048): a hinted rollout "
                "generates at most max_completion_length - len(hint) tokens, so hinted and plain rollouts have "
                "the same total budget. A hint (or LUFFY trace) longer than the limit is cut to it and nothing is "
                "generated after it (logged as rollout/forced_cut_frac). Generation still runs to the full limit "
                "and the continuation is truncated afterwards, so a hinted rollout's discarded tokens cost time."})
    method: str = field(default="grpo", metadata={
        "help": "The method (scaffoldrl.methods): 'grpo' (no hints), 'pss' (SPARKLE's prompt-side levels 0..K, "
                "each its own row and group), 'seele' (response-prefix hints at an adaptive per-question rate), "
                "'uft', 'luffy', 'prefix_rft', or 'package.module:Class' for a method of your own."})
    rounds: int = field(default=1, metadata={
        "help": "m: sequential sampling rounds per step, each of num_generations/m rollouts per question; an "
                "adaptive method refits between rounds. SEELE: 4 rounds x 8. Other methods use 1."})
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
        method = get_method(self.method)
        if self.hint_unit not in UNITS:
            raise ValueError(f"hint_unit must be one of {UNITS}, got {self.hint_unit!r}")
        if self.rounds < 1 or self.num_generations % self.rounds:
            raise ValueError(f"rounds ({self.rounds}) must divide num_generations ({self.num_generations})")
        if self.rounds > 1 and not method.adaptive:
            raise ValueError(f"rounds > 1 needs an adaptive method (e.g. 'seele'); {self.method!r} uses 1 round")
        local = self.per_device_train_batch_size * self.steps_per_generation
        if local % self.num_generations:
            raise ValueError(
                f"each process must hold whole groups for its rounds: per_device_train_batch_size x "
                f"steps_per_generation ({local}) must be a multiple of num_generations ({self.num_generations})")
        method.check_config(self)

    @property
    def schedule_steps(self) -> int:
        """The horizon of the UFT and Prefix-RFT hint schedules."""
        return self.hint_schedule_steps if self.hint_schedule_steps is not None else self.max_steps


class _Rollout(NamedTuple):
    """One rollout of a round: where it goes in the group, its question, its plan and its forced tokens."""

    slot: int
    question: int
    plan: RolloutPlan
    forced: list[int]


class ScaffoldTrainer(GRPOTrainer):
    """GRPO with hint scaffolding: TRL's trainer with a method's rollouts and loss hooks.

    The training rows are built from ``problems`` by the method (one row per
    problem, or one per prompt-side level for PSS); the problems' steps are
    the reference solutions hints are cut from. ``method`` defaults to the
    one ``args.method`` names. ``reward_funcs`` default to correctness by the
    shared grader. Pass ``model`` as a saved path: with ``beta > 0`` TRL
    rebuilds the reference model from it.

    Every completion carries ``kinds`` (index into :data:`scaffoldrl.hints.KINDS`)
    and ``hint_mask`` (forced hint tokens) into the loss, beside TRL's
    ``tool_mask`` (from ``env_mask``: the tokens under the policy gradient).
    """

    def __init__(self, model: str, args: ScaffoldConfig, problems: Sequence[Problem], processing_class,
                 reward_funcs=None, method: Method | None = None, **kwargs):
        from datasets import Dataset

        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        self.method = method or get_method(args.method).from_config(args)
        check_references(self.method, problems)  # hints are cut from the steps: none would mean plain GRPO
        self.problems = {p.id: p for p in problems}
        rowset = self.method.rows(problems, tokenizer, args.max_prompt_tokens)
        self.dropped_rows = rowset.dropped
        if rowset.dropped:
            logger.warning("dropped %d of %d rows over %d prompt tokens", len(rowset.dropped),
                           len(rowset.dropped) + len(rowset.rows), args.max_prompt_tokens)
        self.grader = get_grader()
        self._references: dict[str, Reference] = {}
        self._rows: list[dict] | None = None  # the dataset rows of the batch being generated
        self._loss_inputs: dict | None = None  # inside _compute_loss: the inputs TRL's objective reads
        self._loss_ctx: LossContext | None = None  # inside _compute_loss: what its forward pass gave
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="You are using 'rollout_func'")
            super().__init__(model=model, reward_funcs=reward_funcs or [correctness_reward], args=args,
                             train_dataset=Dataset.from_list([r.to_dict() for r in rowset.rows]),
                             processing_class=processing_class, rollout_func=self._rollout, **kwargs)

    # -- rollouts -------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs):
        """TRL's generation and scoring, with the rows kept for the rollout and the hint mask and kinds as tensors."""
        self._rows = inputs
        with warnings.catch_warnings():  # TRL 1.16 reads a property transformers 5 deprecates; both are pinned
            warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
            output = super()._generate_and_score_completions(inputs)
        self._rows = None
        width, device = output["completion_ids"].size(1), output["completion_ids"].device
        hint = torch.zeros(len(inputs), width, dtype=torch.long)  # right-padded like TRL's completion tensors
        for i, x in enumerate(inputs):
            hint[i, : len(x["hint_mask"])] = torch.tensor(x["hint_mask"], dtype=torch.long)
        output["hint_mask"] = hint.to(device) * output["completion_mask"]
        output["kinds"] = torch.tensor([KINDS.index(x["kind"]) for x in inputs], device=device)
        self.method.prepare_batch(output, lambda t: self.accelerator.gather(t).sum())
        return output

    def _rollout(self, prompts: list, trainer: GRPOTrainer) -> dict[str, list]:
        """TRL's ``rollout_func``: m rounds of n rollouts per question, the method observing each round."""
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
        trained_hints = int(self.method.hints_get_policy_gradient)
        out: dict[str, list] = {key: [None] * len(prompts) for key in (
            "prompt_ids", "completion_ids", "logprobs", "env_mask", "hint_mask", "kind", "hint_rate")}

        for r in range(rounds):
            started = time.perf_counter()
            batch: list[_Rollout] = []
            for j, row in enumerate(heads):
                ref = self._reference(row["problem_id"])
                plans = self.method.plan(ref, step, r, n) if training else [ref.plan(0)] * n
                batch += [_Rollout(j * group + r * n + k, j, plan, ref.forced_ids(plan))
                          for k, plan in enumerate(plans)]
            # the response limit counts forced tokens: a rollout whose hint fills it is not sampled
            sampled = [b for b in batch if b.plan.kind != OFF_POLICY and not self._over_budget(b.forced)]
            generated, logprobs = self._sample([list(prompt_ids[b.question]) + b.forced for b in sampled],
                                               filler=list(prompt_ids[0]))
            continuation = {b.slot: (generated[i], logprobs[i] if logprobs else []) for i, b in enumerate(sampled)}

            cut = 0
            for slot, j, plan, forced in batch:
                ids, lps = continuation.get(slot, ([], []))
                forced, ids, was_cut = fit_budget(forced, list(ids), self.max_completion_length)
                lps, cut = list(lps)[: len(ids)], cut + was_cut
                out["prompt_ids"][slot] = list(prompt_ids[j])
                out["completion_ids"][slot] = forced + list(ids)
                # vLLM's sampling log-probs; forced tokens were not sampled (None: TRL leaves them uncorrected)
                out["logprobs"][slot] = None if logprobs is None else [None] * len(forced) + list(lps)
                out["env_mask"][slot] = [trained_hints * (plan.kind == HINTED)] * len(forced) + [1] * len(ids)
                out["hint_mask"][slot] = [int(plan.kind == HINTED)] * len(forced) + [0] * len(ids)
                out["kind"][slot] = plan.kind
                out["hint_rate"][slot] = plan.rate

            if training:
                self._observe(heads, batch, out["completion_ids"])
            self._log_metric(f"rollout/round{r}_seconds", time.perf_counter() - started)
            self._log_metric("rollout/forced_cut_frac", cut / max(1, len(batch)))

        if training:
            stats = self.method.end_step()
            if self.accelerator.num_processes > 1:
                from accelerate.utils import gather_object

                self.method.sync([row["problem_id"] for row in heads], gather_object)
            for name, value in (stats.metrics() if stats else {}).items():
                self._log_metric(name, value)
        if any(lp is None for lp in out["logprobs"]):
            out["logprobs"] = None  # HF generate gives none; TRL then recomputes what it needs
        return out

    def _reference(self, problem_id: str) -> Reference:
        if problem_id not in self._references:
            self._references[problem_id] = Reference(self.problems[problem_id], self.args.hint_unit, self._tokenizer)
        return self._references[problem_id]

    def _over_budget(self, forced: list[int]) -> bool:
        """True when the forced tokens alone fill the response limit, so nothing is left to generate."""
        return self.max_completion_length is not None and len(forced) >= self.max_completion_length

    def _sample(self, prompts: list[list[int]], filler: list[int]) -> tuple[list[list[int]], list | None]:
        """Continue each prompt (hint included) with TRL's configured backend: HF generate, or vLLM server/colocate.

        vLLM's server mode samples each distinct prompt once with ``n`` copies,
        so consecutive identical prompts are passed as runs of equal length
        (``n``, the same on every process).

        With several processes, every process passes the backend equally many
        prompts in every round, padded with copies of ``filler`` (any prompt of
        this process) that are generated and dropped: TRL's vLLM server mode
        (and colocated tensor-parallel vLLM) gathers the prompts of all
        processes and hands process i the completions at ``i·len(prompts)``,
        and weight syncs and ZeRO-3/FSDP weight gathers are collectives that
        every process must enter, also one whose hints all filled the budget.
        """
        local = len(prompts)
        run = _run_length(prompts) if prompts else 0
        if self.accelerator.num_processes > 1:
            sizes = self.accelerator.gather(torch.tensor([local, run], device=self.accelerator.device)).view(-1, 2)
            width = int(sizes[:, 0].max())
            run = math.gcd(*sizes[:, 1].tolist())  # gcd(0, r) = r: a process with nothing to sample sets no run
            # each process's count is a multiple of its run, so of the gcd: the padding is whole runs too
            prompts = prompts + [list(filler)] * (width - local)
        if not prompts:  # nothing to sample on any process
            return [], None
        completions, logprobs = self._generate_single_turn(prompts, None, {}, max(1, run))
        return completions[:local], None if logprobs is None else logprobs[:local]

    def _observe(self, heads: list[dict], batch: list[_Rollout], completion_ids: list) -> None:
        """Grade one round and tell the method each question's accuracy at the rate it got.

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
            if self.method.placement == "prompt":  # the hint is in the row: its level is the rate
                question, rate = row["id"], row["level"] / max(1, row["levels"] - 1)
            else:
                question, rate = row["problem_id"], sum(p.rate for p, _ in own) / len(own)
            self.method.observe(question, rate, sum(correct) / len(correct), [float(c) for _, c in results])

    # -- loss -----------------------------------------------------------------------
    def loss_context(self, inputs: dict[str, Any], per_token_logps: torch.Tensor,
                     entropies: torch.Tensor) -> LossContext:
        """What the method's loss hooks see of a micro-batch: its inputs, the forward pass, TRL's reductions."""
        mode = "train" if self.model.training else "eval"
        accumulation = self.current_gradient_accumulation_steps if mode == "train" else 1

        def log(name: str, value: float) -> None:
            self._metrics[mode][name].append(value)

        return LossContext(inputs, per_token_logps, entropies, accumulation, log,
                           lambda loss, mask: self._reduce_like_trl(loss, mask, inputs, mode, accumulation),
                           self.get_high_entropy_mask)

    def _get_per_token_logps_and_entropies(self, *args, **kwargs):
        output = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if self._loss_inputs is not None:  # inside _compute_loss: the method sees its forward pass
            if self._loss_ctx is not None:
                raise RuntimeError("TRL's loss ran two forward passes: the method hooks expect one (TRL moved?)")
            self._loss_ctx = self.loss_context(self._loss_inputs, output[0], output[1])
            self.method.shape_advantages(self._loss_ctx)
        return output

    def _compute_loss(self, model, inputs):
        """TRL's loss, with the method's advantage shaping and extra term on the same forward pass.

        ``inputs`` is copied: between TRL's forward pass and its objective
        (which reads ``advantages`` only after the forward), the method may
        replace the advantages.
        """
        inputs = dict(inputs)
        self._loss_inputs, self._loss_ctx = inputs, None
        try:
            loss = super()._compute_loss(model, inputs)
            extra = self.method.extra_loss(self._loss_ctx)
        finally:
            self._loss_inputs = self._loss_ctx = None
        return loss if extra is None else loss + extra

    def _reduce_like_trl(self, per_token_loss: torch.Tensor, mask: torch.Tensor, inputs: dict[str, Any],
                         mode: str, accumulation: int) -> torch.Tensor:
        """Reduce a per-token loss over ``mask`` as TRL reduces its policy loss for ``loss_type``.

        So an added term's tokens weigh exactly like the tokens of TRL's clipped
        objective: per sequence then per batch (grpo), over B · max length
        (dr_grpo), or over the generation batch's token count (dapo).
        """
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
        raise ValueError(f"no reduction for loss_type {self.loss_type!r} (use {REDUCED_LOSS_TYPES})")

    # -- state across checkpoints ---------------------------------------------------
    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            self.method.save_state(os.path.join(self._get_output_dir(trial=trial), folder, METHOD_STATE))

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        path = os.path.join(checkpoint, METHOD_STATE)
        if os.path.exists(path):
            self.method.load_state(path)
        else:
            logger.warning("%s has no %s: the method starts fresh", checkpoint, METHOD_STATE)


def _run_length(prompts: list[list[int]]) -> int:
    """The length of the runs of identical consecutive prompts, when all runs are equally long; else 1."""
    if not prompts:
        return 1
    run = next((i for i, p in enumerate(prompts) if p != prompts[0]), len(prompts))
    if len(prompts) % run or any(prompts[i] != prompts[i - i % run] for i in range(len(prompts))):
        return 1
    return run
