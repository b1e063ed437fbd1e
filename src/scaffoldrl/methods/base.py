"""The interface a scaffolding method implements for the trainer, and the pieces several methods share.

The trainer (:class:`scaffoldrl.trainer.ScaffoldTrainer`) runs TRL's loop and
the sampling rounds; a method answers its questions, in the order of the data flow:

1. :meth:`Method.rows`: the dataset rows it trains on (SPARKLE's prompt-side
   levels make several rows of one problem, :meth:`Method.prompt_hints`);
2. :meth:`Method.plan`: what each of the n rollouts of a round gets: nothing,
   a hint prefix, or the whole reference (:class:`~scaffoldrl.hints.RolloutPlan`);
3. :meth:`Method.observe` and :meth:`Method.end_step`: a round's accuracy per
   question (SEELE refits its curve here), and the step's statistics, the same
   for every method so that runs compare on one dashboard;
4. :meth:`Method.prepare_batch`, :meth:`Method.shape_advantages` and
   :meth:`Method.extra_loss`: what it changes in or adds to TRL's clipped
   objective, from the loss's own forward pass (:class:`LossContext`);
5. :meth:`Method.state_dict`: what it keeps across steps and checkpoints.

A subclass with a ``name`` is registered when its module is imported;
:func:`scaffoldrl.methods.get_method` finds it by that name, or by
``"package.module:Class"``, so a new method is a new file and a recipe, with
no edit to the trainer.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Sequence

from ..hints import PromptRow, Reference, RolloutPlan, RowSet, prompt_tokens
from ..records import Problem

REDUCED_LOSS_TYPES = ("grpo", "dr_grpo", "dapo")
"""TRL loss types whose reduction :attr:`LossContext.reduce` reproduces."""

REGISTRY: dict[str, type["Method"]] = {}
"""Method name → class, filled as method modules are imported."""


@dataclass(frozen=True)
class Observation:
    """One round of one question: the hint rate used, the accuracy, and the reward range seen."""

    rate: float
    accuracy: float
    reward_min: float
    reward_max: float


@dataclass(frozen=True)
class StepStats:
    """What a training step's hinting did (SEELE's diagnostics, for every method).

    ``round_accuracy[r]`` is the mean accuracy of round r over the questions;
    ``zero_variance_frac`` is the fraction of groups (questions) whose rewards
    were all equal, i.e. that gave no gradient; ``target_gap`` is
    |mean accuracy − a*| for methods that aim at a target a*.
    """

    questions: int
    mean_rate: float
    mean_accuracy: float
    round_accuracy: list[float]
    zero_variance_frac: float
    target_gap: float | None = None

    def metrics(self, prefix: str = "hint/") -> dict[str, float]:
        """Flat name → value pairs for a logger."""
        out = {f"{prefix}mean_rate": self.mean_rate, f"{prefix}mean_accuracy": self.mean_accuracy,
               f"{prefix}zero_variance_frac": self.zero_variance_frac}
        out |= {f"{prefix}accuracy_round{r}": a for r, a in enumerate(self.round_accuracy)}
        if self.target_gap is not None:
            out[f"{prefix}target_gap"] = self.target_gap
        return out


def step_stats(observations: dict[str, list[Observation]], target: float | None = None) -> StepStats | None:
    """Summarise one step's observations (question → rounds in order); None when nothing was observed."""
    groups = [obs for obs in observations.values() if obs]
    if not groups:
        return None
    flat = [o for obs in groups for o in obs]
    mean_accuracy = sum(o.accuracy for o in flat) / len(flat)
    rounds = max(len(obs) for obs in groups)
    round_accuracy = []
    for r in range(rounds):
        accs = [obs[r].accuracy for obs in groups if len(obs) > r]
        round_accuracy.append(sum(accs) / len(accs))
    flat_groups = sum(max(o.reward_max for o in obs) == min(o.reward_min for o in obs) for obs in groups)
    return StepStats(
        questions=len(groups),
        mean_rate=sum(o.rate for o in flat) / len(flat),
        mean_accuracy=mean_accuracy,
        round_accuracy=round_accuracy,
        zero_variance_frac=flat_groups / len(groups),
        target_gap=None if target is None else abs(mean_accuracy - target),
    )


@dataclass
class LossContext:
    """What a method's loss hooks see of one micro-batch.

    ``inputs`` are TRL's loss inputs plus ``hint_mask`` (1 on forced hint
    tokens) and ``kinds`` (each completion's index into
    :data:`scaffoldrl.hints.KINDS`); ``per_token_logps`` and ``entropies`` are
    (B, T) over completion tokens from the forward pass TRL's loss runs (no
    extra pass). ``reduce(per_token_loss, mask)`` reduces a term exactly as TRL
    reduces its policy loss for the configured ``loss_type``, gradient
    accumulation included; ``high_entropy_mask`` is TRL's own quantile over
    all processes.
    """

    inputs: dict[str, Any]
    per_token_logps: Any
    entropies: Any
    accumulation: int
    log: Callable[[str, float], None]
    reduce: Callable[[Any, Any], Any]
    high_entropy_mask: Callable[[Any, Any, float], Any]

    def token_advantages(self):
        """The advantages as (B, T): TRL's (B,) per-sequence ones broadcast over tokens."""
        advantages = self.inputs["advantages"]
        return advantages if advantages.dim() == 2 else advantages[:, None].expand_as(self.per_token_logps)


def hint_imitation_loss(ctx: LossContext, coef: float):
    """γ · mean NLL of the forced hint tokens of the micro-batch (SEELE's imitation term, UFT's hint likelihood).

    Forced tokens get no policy gradient; this small term is what they teach.
    """
    hint = ctx.inputs["hint_mask"]
    tokens = hint.sum()
    if coef == 0 or tokens == 0:
        return None
    nll = -(ctx.per_token_logps * hint).sum() / tokens
    ctx.log("hint/imitation_nll", nll.item())
    return coef * nll / ctx.accumulation


def cosine_schedule(step: float, steps: float, start: float, end: float) -> float:
    """``start`` at step 0 falling along half a cosine to ``end`` at ``steps``, and ``end`` after."""
    progress = min(max(step / steps, 0.0), 1.0) if steps > 0 else 1.0
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def check_guided(config, what: str) -> None:
    """A group must keep at least one rollout the method does not guide."""
    if not 1 <= config.guided_rollouts < config.num_generations:
        raise ValueError(f"guided_rollouts ({config.guided_rollouts}) must leave an unguided rollout in each "
                         f"group of {config.num_generations} ({what})")


class MissingReference(ValueError):
    """Problems without reference steps given to a method that cuts its hints from them; names the file and rows."""

    def __init__(self, method: str, where: str, ids: list[str], total: int):
        self.method, self.where, self.ids, self.total = method, where, ids, total
        shown = ", ".join(repr(i) for i in ids[:10]) + (f", ... ({len(ids) - 10} more)" if len(ids) > 10 else "")
        super().__init__(
            f"{where}: {len(ids)} of {total} records have no reference steps, which method '{method}' cuts its hints "
            f"from (it would train plain GRPO on them); rows with ids {shown}. Split a solution column into steps "
            f"with `scaffoldrl data prepare INPUT OUT --field solution=COLUMN`, write steps with "
            f"`scaffoldrl data annotate --task steps`, or leave these rows out")


def require_steps(problems: Iterable[Problem], method: str, where: str | Path = "the training problems") -> None:
    """Raise :class:`MissingReference` naming ``where`` and the rows when some problems have no reference steps."""
    problems = list(problems)
    missing = [p.id for p in problems if not p.steps]
    if missing:
        raise MissingReference(method, str(where), missing, len(problems))


def check_references(method: "Method | type[Method]", problems: Iterable[Problem],
                     where: str | Path = "the training problems") -> None:
    """Raise :class:`MissingReference` when ``method`` needs reference steps and some problems have none.

    ``where`` names the problems' file in the message.
    """
    if method.needs_reference:
        cls = method if isinstance(method, type) else type(method)
        require_steps(problems, cls.name or cls.__name__, where)


class Method:
    """No hints (plain GRPO), and the interface every method implements.

    Subclasses set ``name`` and override what they change: :meth:`prompt_hints`
    (static prompt-side levels), :meth:`plan` (per-rollout response-prefix
    hints), :meth:`observe` (adaptive methods), the loss hooks, and
    :meth:`state_dict` for state the trainer saves with every checkpoint.
    """

    name: ClassVar[str] = ""
    placement: ClassVar[str] = "response"
    """Where hints go: ``prompt`` (in the dataset rows) or ``response`` (forced at the start of a rollout)."""
    adaptive: ClassVar[bool] = False
    """True when :meth:`observe` changes the next round's plans, so ``rounds > 1`` means something."""
    hints_get_policy_gradient: ClassVar[bool] = False
    """Forced hint tokens are out of the policy gradient (SEELE, UFT), or trained like generated ones (Prefix-RFT)."""
    target: float | None = None
    """a*, for methods that steer accuracy to a target (reported as ``hint/target_gap``)."""
    needs_reference: ClassVar[bool] = False
    """True when hints are cut from the problems' reference ``steps``: without them the method would silently train
    plain GRPO, so :func:`check_references` refuses such problems."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            REGISTRY[cls.name] = cls

    def __init__(self):
        self.observations: dict[str, list[Observation]] = {}

    # -- configuration --------------------------------------------------------------
    @classmethod
    def check_config(cls, config) -> None:
        """Raise ``ValueError`` when a :class:`~scaffoldrl.trainer.ScaffoldConfig` cannot run this method."""

    @classmethod
    def from_config(cls, config) -> "Method":
        """The method with its settings read from a :class:`~scaffoldrl.trainer.ScaffoldConfig`."""
        return cls()

    # -- dataset (prompt-side hints) ------------------------------------------------
    def prompt_hints(self, problem: Problem) -> list[str | None]:
        """The prompt-side hint of each row this problem becomes; None is the plain row."""
        return [None]

    def rows(self, problems: Iterable[Problem], tokenizer: Any = None,
             max_prompt_tokens: int | None = None) -> RowSet:
        """The training rows; with a tokenizer and a limit, rows whose full prompt is longer are dropped and counted."""
        check = tokenizer is not None and max_prompt_tokens is not None
        kept, dropped = [], []
        for p in problems:
            hints = self.prompt_hints(p)
            for level, hint in enumerate(hints):
                row = PromptRow(id=p.id if level == 0 else f"{p.id}:L{level}", problem_id=p.id,
                                question=p.problem, answer=p.answer, level=level, levels=len(hints),
                                hint=hint, source=p.source)
                if check and prompt_tokens(row, tokenizer) > max_prompt_tokens:
                    dropped.append(row.id)
                else:
                    kept.append(row)
        return RowSet(kept, dropped, checked=check)

    # -- rollouts (response-prefix hints) -------------------------------------------
    def plan(self, ref: Reference, step: int, round: int, n: int) -> list[RolloutPlan]:
        """What each of the ``n`` rollouts of ``round`` at training ``step`` gets."""
        return [ref.plan(0)] * n

    def observe(self, question_id: str, rate: float, accuracy: float,
                rewards: Sequence[float] | None = None) -> None:
        """Record one round's outcome for a question: the rate used (the plan's ``rate``) and its accuracy.

        ``rewards`` (the round's rewards) let zero-variance groups be detected
        for non-binary rewards; without them the reward is taken as correctness.
        """
        if rewards is not None and len(rewards):
            lo, hi = min(rewards), max(rewards)
        else:
            lo, hi = float(accuracy >= 1.0), float(accuracy > 0.0)
        self.observations.setdefault(question_id, []).append(Observation(rate, accuracy, lo, hi))

    def end_step(self) -> StepStats | None:
        """Close the training step: summarise its observations, then forget them."""
        stats = step_stats(self.observations, self.target)
        self.observations = {}
        return stats

    def sync(self, question_ids: list[str], gather_object: Callable[[list], list]) -> None:
        """With several processes, share what this step changed for ``question_ids`` (accelerate's ``gather_object``)."""

    # -- loss -----------------------------------------------------------------------
    def prepare_batch(self, batch: dict[str, Any], gather: Callable) -> None:
        """Change the generation batch TRL hands to the loss (``gather`` sums a tensor over processes)."""

    def shape_advantages(self, ctx: LossContext) -> None:
        """Change ``ctx.inputs["advantages"]`` after the forward pass, before TRL's objective reads them."""

    def extra_loss(self, ctx: LossContext):
        """A term added to TRL's loss (a scalar tensor), or None."""
        return None

    # -- state across steps and checkpoints -----------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What must survive a checkpoint (JSON-serialisable)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the stateless base has nothing to restore)."""

    def save_state(self, path: str | Path) -> Path:
        """Write :meth:`state_dict` as JSON, named by the method's class."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"method": type(self).__name__, "state": self.state_dict()}, indent=1))
        return path

    def load_state(self, path: str | Path) -> None:
        """Restore a :meth:`save_state` file; a file of another method is an error."""
        saved = json.loads(Path(path).read_text())
        if saved["method"] != type(self).__name__:
            raise ValueError(f"{path} holds the state of {saved['method']}, not {type(self).__name__}")
        self.load_state_dict(saved["state"])
