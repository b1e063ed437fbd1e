"""Hints: prefixes of a reference solution, where they are placed, and which rollout gets which.

A *hint* is the first l *units* of a reference solution y: steps (the
problem's ``steps``: exact for the embedded domain, split by
:mod:`scaffoldrl.steps` for real data) or tokens. It is placed either

* **prompt-side** (SPARKLE PSS): appended to the user turn after
  ``" Assistant: <think>\\n"``; every hint level is its own dataset row and its
  own group, so the policy acts once, on the dataset (:meth:`HintPolicy.rows`);
* **response-prefix** (SEELE and the baselines of :mod:`scaffoldrl.baselines`):
  the forced start of the assistant turn (:func:`response_prefix`); its tokens
  are masked out of the policy gradient (except for Prefix-RFT, which trains
  them), so the policy acts per rollout (:meth:`HintPolicy.plan`).

The trainer runs the rounds; a policy only answers "what does each of the n
rollouts of this round get" and hears back each round's accuracy through
:meth:`HintPolicy.observe`. Every policy reports the same per-step statistics,
so runs with different policies compare on one dashboard.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

from .prompts import THINK_OPEN, sparkle_prompt, sparkle_user_turn
from .records import Problem
from .steps import group, split_steps

UNITS = ("steps", "tokens")
ON_POLICY, HINTED, OFF_POLICY = "on_policy", "hinted", "off_policy"


@dataclass(frozen=True)
class RolloutPlan:
    """What one rollout gets: its kind, its hint length l in units, and the rate l/|y| actually used."""

    kind: str
    units: int
    rate: float


class Reference:
    """A problem's reference solution measured in hint units, so rates become prefixes.

    ``unit="tokens"`` needs a tokenizer (anything with ``encode``/``decode``,
    e.g. a Hugging Face tokenizer); the token prefix is decoded from the ids of
    the whole solution, so a hint never splits differently than the solution.
    """

    def __init__(self, problem: Problem, unit: str = "steps", tokenizer: Any = None):
        if unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {unit!r}")
        if unit == "tokens" and tokenizer is None:
            raise ValueError("hints in tokens need a tokenizer")
        self.id = problem.id
        self.unit = unit
        self.n_steps = len(problem.steps)
        self._steps = list(problem.steps)
        self._tokenizer = tokenizer
        self._ids = tokenizer.encode(problem.solution, add_special_tokens=False) if unit == "tokens" else None

    @property
    def total(self) -> int:
        """|y|: the solution's length in units."""
        return self.n_steps if self._ids is None else len(self._ids)

    def units_for(self, rate: float) -> int:
        """l = round(p·|y|), halves rounded up so that a rate maps to the same length everywhere."""
        return min(self.total, max(0, math.floor(rate * self.total + 0.5)))

    def prefix(self, units: int) -> str:
        """The hint text: the first ``units`` units of the solution."""
        if self._ids is None:
            return "\n".join(self._steps[:units])
        return self._tokenizer.decode(self._ids[:units]) if units > 0 else ""

    def plan(self, units: int) -> RolloutPlan:
        """An on-policy (l = 0) or hinted rollout with the first ``units`` units forced."""
        units = min(units, self.total)
        return RolloutPlan(HINTED if units > 0 else ON_POLICY, units, units / self.total if self.total else 0.0)

    def off_policy(self) -> RolloutPlan:
        """A rollout replaced by the whole reference trace (LUFFY)."""
        return RolloutPlan(OFF_POLICY, self.total, 1.0)


def response_prefix(hint: str) -> str:
    """The forced start of the assistant turn for a response-prefix hint; empty when there is none.

    It opens the thinking block exactly as the prompt-side placement does, so the
    same hint reads the same to the model wherever it is placed.
    """
    return f"{THINK_OPEN}{hint}" if hint else ""


@dataclass(frozen=True)
class PromptRow:
    """One training prompt: a problem at one prompt-side hint level (0 = no hint)."""

    id: str
    problem_id: str
    question: str
    answer: str
    level: int
    levels: int
    hint: str | None = None
    source: str = ""

    @property
    def content(self) -> str:
        return sparkle_user_turn(self.question, self.hint)

    def to_dict(self) -> dict[str, Any]:
        """TRL's conversational prompt format; the other fields reach reward functions as columns."""
        return {"id": self.id, "problem_id": self.problem_id,
                "prompt": [{"role": "user", "content": self.content}], "answer": self.answer,
                "level": self.level, "levels": self.levels, "hint": self.hint or "", "source": self.source}


@dataclass
class RowSet:
    """The training rows of a dataset and the rows dropped for exceeding the prompt limit.

    ``checked`` is False when no tokenizer was given: lengths were then not
    measured and nothing was dropped (the engine may still drop or truncate).
    """

    rows: list[PromptRow]
    dropped: list[str] = field(default_factory=list)
    checked: bool = False

    def write(self, path: str | Path) -> Path:
        """Write the rows as JSONL or Parquet (by suffix)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        dicts = [r.to_dict() for r in self.rows]
        if path.suffix == ".jsonl":
            path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in dicts), encoding="utf-8")
        elif path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist(dicts), path)
        else:
            raise ValueError(f"{path}: unknown format (use .jsonl or .parquet)")
        return path


@dataclass(frozen=True)
class Observation:
    """One round of one question: the hint rate used, the accuracy, and the reward range seen."""

    rate: float
    accuracy: float
    reward_min: float
    reward_max: float


@dataclass(frozen=True)
class StepStats:
    """What a training step's hinting did (SEELE's diagnostics, for every policy).

    ``round_accuracy[r]`` is the mean accuracy of round r over the questions;
    ``zero_variance_frac`` is the fraction of groups (questions) whose rewards
    were all equal, i.e. that gave no gradient; ``target_gap`` is
    |mean accuracy − a*| for policies that aim at a target a*.
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


class HintPolicy:
    """No hints (plain GRPO), and the interface every hint policy implements.

    Subclasses override :meth:`prompt_hints` (static prompt-side levels) or
    :meth:`plan` (per-rollout response-prefix hints), and may keep state across
    steps in :meth:`state_dict`, which the trainer saves with every checkpoint.
    """

    placement: ClassVar[str] = "response"
    # forced hint tokens: out of the policy gradient (SEELE, UFT: env_mask 0, only the imitation term),
    # or trained with the rollout's advantage like generated tokens (Prefix-RFT)
    hints_get_policy_gradient: ClassVar[bool] = False
    target: float | None = None

    def __init__(self):
        self.observations: dict[str, list[Observation]] = {}

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
                if check and _prompt_tokens(row, tokenizer) > max_prompt_tokens:
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

    # -- state across steps and checkpoints -----------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (the stateless base has nothing to restore)."""

    def save_state(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"policy": type(self).__name__, "state": self.state_dict()}, indent=1))
        return path

    def load_state(self, path: str | Path) -> None:
        saved = json.loads(Path(path).read_text())
        if saved["policy"] != type(self).__name__:
            raise ValueError(f"{path} holds the state of {saved['policy']}, not {type(self).__name__}")
        self.load_state_dict(saved["state"])


def _prompt_tokens(row: PromptRow, tokenizer: Any) -> int:
    """Length of the prompt as the engine sees it: the user turn through the chat template."""
    return len(tokenizer.encode(sparkle_prompt(row.question, tokenizer, row.hint), add_special_tokens=False))


@dataclass
class PSSConfig:
    """SPARKLE's partial-step scaffolding (stage-2 augmentation).

    Args:
        levels: K, the number of cumulative hint levels added to the plain row;
            the solution is split into K chunks and level i shows the first i.
        hide_final_step: never reveal the final step (it holds the answer).
            SPARKLE's original reveals the whole solution at level K (False).
        resplit: when a problem has fewer steps than needed, re-split its
            solution more finely (real data). Turn off for exact steps (the
            embedded domain): such a problem then gets fewer levels.
    """

    levels: int = 4
    hide_final_step: bool = False
    resplit: bool = True


class SparklePSS(HintPolicy):
    """Static prompt-side levels 0..K, each its own row and group (SparkleRL-PSS)."""

    placement = "prompt"

    def __init__(self, config: PSSConfig | None = None):
        super().__init__()
        self.config = config or PSSConfig()
        if self.config.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.config.levels}")

    def chunks(self, problem: Problem) -> list[str]:
        """The solution in at most K contiguous chunks (the final step left out when hidden)."""
        needed = self.config.levels + self.config.hide_final_step
        units = list(problem.steps)
        if self.config.resplit and 0 < len(units) < needed:
            units = split_steps("\n\n".join(units), min_steps=needed)
        if self.config.hide_final_step:
            units = units[:-1]
        return group(units, self.config.levels)

    def prompt_hints(self, problem: Problem) -> list[str | None]:
        chunks = self.chunks(problem)
        return [None] + ["\n".join(chunks[:i]) for i in range(1, len(chunks) + 1)]
