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

from .prompts import THINK_OPEN, reference_response, sparkle_prompt, sparkle_user_turn
from .records import InputError, Problem

UNITS = ("steps", "tokens")
ON_POLICY, HINTED, OFF_POLICY = "on_policy", "hinted", "off_policy"
KINDS = (ON_POLICY, HINTED, OFF_POLICY)  # a completion's kind travels to the loss as its index here
STEP_SEPARATOR = "\n"  # what follows every step in the reference response, and so in a step hint


@dataclass(frozen=True)
class RolloutPlan:
    """What one rollout gets: its kind, its hint length l in units, and the rate l/|y| actually used."""

    kind: str
    units: int
    rate: float


class Reference:
    """A problem's reference solution measured in hint units, so rates become prefixes, text and token ids.

    The reference *response* is :func:`~scaffoldrl.prompts.reference_response`:
    ``<think>\\n``, the steps joined by ``\\n``, then the closing tags and the
    boxed answer. A hint of l units is a prefix of it:

    * ``unit="steps"``: the first l steps, each **with its separator** (the
      newline after it), so the hint ends exactly where the next step starts;
    * ``unit="tokens"``: the first l tokens of the solution inside the
      response's own token ids, cut in token space (a cut that would split a
      multi-byte character moves back to the character's start).

    :meth:`hint_ids` gives the ids a rollout is forced with: always a prefix of
    :attr:`response_ids`, the tokenization of the whole response. For step hints
    that is the hint text's own tokenization wherever the tokenizer allows it;
    where a token of the response straddles the hint's end, the hint stops
    before that token rather than forcing ids the model would never see in the
    reference. ``tokenizer`` is anything with ``encode``/``decode`` (a Hugging
    Face tokenizer); token units need it, step units only for ids.
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
        self._answer = problem.answer
        self._tokenizer = tokenizer
        self._ids: list[int] | None = None
        self._decoded: str | None = None
        self._snapped: dict[int, int] = {}
        self._head = self._tokens = 0  # token units: where the solution starts in the response, and its length
        if unit == "tokens":
            self._head = self._common(THINK_OPEN)
            self._tokens = self._common(THINK_OPEN + problem.solution + "\n") - self._head

    # -- units ----------------------------------------------------------------------
    @property
    def total(self) -> int:
        """|y|: the solution's length in units."""
        return self.n_steps if self.unit == "steps" else self._tokens

    def units_for(self, rate: float) -> int:
        """l = round(p·|y|), halves rounded up so that a rate maps to the same length everywhere."""
        return min(self.total, max(0, math.floor(rate * self.total + 0.5)))

    def plan(self, units: int) -> RolloutPlan:
        """An on-policy (l = 0) or hinted rollout with the first ``units`` units forced.

        Token units that would end inside a multi-byte character are moved back
        to the character's start, so ``units`` (and the rate) say what is forced.
        """
        units = max(0, min(units, self.total))
        if self.unit == "tokens":
            units = self._whole_characters(units)
        return RolloutPlan(HINTED if units > 0 else ON_POLICY, units, units / self.total if self.total else 0.0)

    def off_policy(self) -> RolloutPlan:
        """A rollout replaced by the whole reference trace (LUFFY)."""
        return RolloutPlan(OFF_POLICY, self.total, 1.0)

    # -- text -----------------------------------------------------------------------
    @property
    def response(self) -> str:
        """The whole reference response (steps in ``<think>``, the boxed answer in ``<answer>``)."""
        return reference_response(self._steps, self._answer)

    def prefix(self, units: int) -> str:
        """The hint text: the first ``units`` units of the solution (steps end with their newline)."""
        if units <= 0:
            return ""
        if self.unit == "steps":
            return "".join(step + STEP_SEPARATOR for step in self._steps[:units])
        return self._tokenizer.decode(self.hint_ids(units)[self._head:])

    # -- token ids ------------------------------------------------------------------
    @property
    def response_ids(self) -> list[int]:
        """The token ids of the whole reference response (no special tokens)."""
        if self._ids is None:
            if self._tokenizer is None:
                raise ValueError("token ids need a tokenizer: Reference(problem, unit, tokenizer)")
            self._ids = list(self._tokenizer.encode(self.response, add_special_tokens=False))
        return self._ids

    def hint_ids(self, units: int) -> list[int]:
        """The forced ids of a hint of ``units`` units: ``<think>\\n`` and the hint, a prefix of :attr:`response_ids`."""
        if units <= 0:
            return []
        if self.unit == "tokens":
            return self.response_ids[: self._head + min(units, self._tokens)]
        return self.response_ids[: self._common(response_prefix(self.prefix(units)))]

    def trace_ids(self) -> list[int]:
        """The whole reference response and the end-of-sequence token: LUFFY's off-policy trace."""
        return self.response_ids + [self._tokenizer.eos_token_id]

    def forced_ids(self, plan: RolloutPlan) -> list[int]:
        """The tokens a rollout starts with: none, the hint, or the whole reference trace."""
        if plan.kind == HINTED:
            return self.hint_ids(plan.units)
        if plan.kind == OFF_POLICY:
            return self.trace_ids()
        return []

    def _common(self, text: str) -> int:
        """How many leading ids ``text`` shares with the response: the tokens of the response inside ``text``."""
        ids, full = self._tokenizer.encode(text, add_special_tokens=False), self.response_ids
        n = 0
        while n < len(ids) and n < len(full) and ids[n] == full[n]:
            n += 1
        return n

    def _whole_characters(self, units: int) -> int:
        """``units`` tokens, or fewer where the cut would fall inside a multi-byte character."""
        if units not in self._snapped:
            if self._decoded is None:
                self._decoded = self._tokenizer.decode(self.response_ids)
            cut = units
            while cut > 0 and self._splits_a_character(self._tokenizer.decode(self.hint_ids(cut))):
                cut -= 1
            self._snapped[units] = cut
        return self._snapped[units]

    def _splits_a_character(self, text: str) -> bool:
        """A decoded prefix ending in U+FFFD that the whole response does not have there: bytes of a split character."""
        return text.endswith("\ufffd") and not self._decoded.startswith(text)


def fit_budget(forced: list[int], generated: list[int], limit: int | None) -> tuple[list[int], list[int], bool]:
    """Cut a rollout to the response limit, which counts the forced tokens: (forced, generated, hint cut).

    The continuation keeps ``limit − len(forced)`` tokens, so a hinted rollout
    gets the same total budget as a plain one; forced tokens beyond the limit
    are cut (the third value is then True) and nothing is generated after them.
    ``limit=None`` cuts nothing.
    """
    if limit is None:
        return forced, generated, False
    cut = len(forced) > limit
    forced = forced[:limit]
    return forced, generated[: limit - len(forced)], cut


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
            raise InputError(f"{path}: unknown format (use .jsonl or .parquet)")
        return path


def prompt_tokens(row: PromptRow, tokenizer: Any) -> int:
    """Length of the prompt as the engine sees it: the user turn through the chat template."""
    return len(tokenizer.encode(sparkle_prompt(row.question, tokenizer, row.hint), add_special_tokens=False))
