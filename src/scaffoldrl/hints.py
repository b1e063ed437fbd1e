"""Hints: prefixes of a reference solution, measured in units, and the rows and rollouts they make.

A *hint* is the first l *units* of a reference solution y: steps (the
problem's ``steps``: exact for the embedded domain, split by
:mod:`scaffoldrl.steps` for real data) or tokens. It is placed either

* **prompt-side** (SPARKLE PSS): appended to the user turn after
  ``" Assistant: <think>\\n"``; every hint level is its own dataset row
  (:class:`PromptRow`) and its own group;
* **response-prefix** (SEELE, UFT, Prefix-RFT): the forced start of the
  assistant turn (:func:`response_prefix`), planned per rollout
  (:class:`RolloutPlan`).

Which rollout gets which hint is a method's decision (:mod:`scaffoldrl.methods`);
this module only measures and cuts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .prompts import THINK_OPEN, sparkle_prompt, sparkle_user_turn
from .records import Problem

UNITS = ("steps", "tokens")
ON_POLICY, HINTED, OFF_POLICY = "on_policy", "hinted", "off_policy"
KINDS = (ON_POLICY, HINTED, OFF_POLICY)  # a completion's kind travels to the loss as its index here


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
        """The user turn: SPARKLE's prompt, with the row's hint after an opened ``<think>``."""
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


def prompt_tokens(row: PromptRow, tokenizer: Any) -> int:
    """Length of the prompt as the engine sees it: the user turn through the chat template."""
    return len(tokenizer.encode(sparkle_prompt(row.question, tokenizer, row.hint), add_special_tokens=False))
