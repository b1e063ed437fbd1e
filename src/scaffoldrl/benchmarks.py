"""Benchmarks by name or by file: the vendored test sets, the embedded domain's test split, user files.

A name is one of :data:`BENCHMARKS`; ``NAME=PATH`` reads a JSONL / JSON /
Parquet file or saved dataset whose columns are mapped onto
:class:`~scaffoldrl.records.Problem` by a field mapping (``problem=question``
reads the problem from the column ``question``). A file in SPARKLE's
``sparkle_preview`` schema (one row per subproblem) is recognised and grouped
back into one annotated problem per ``problem ID``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

from . import domain
from .extract import last_boxed
from .records import InputError, Problem, RecordError, UnknownName, iter_rows, problem_from_dict, read_records
from .sources import load_source
from .steps import split_steps

SYNTH_PER_LEVEL = 40
"""Problems per level in the embedded domain's test benchmark (5 levels)."""


def synth_test(n_per_level: int = SYNTH_PER_LEVEL) -> list[Problem]:
    """The embedded domain's held-out split (seed 1, ``split="test"``), annotated like SPARKLE's set."""
    return domain.generate(n_per_level, seed=1, split="test")


BENCHMARKS: dict[str, Callable[[], list[Problem]]] = {
    **{name: partial(load_source, name)
       for name in ("math500", "gsm8k", "aime24", "amc23", "minerva_math", "olympiadbench", "gsm8k_socratic")},
    "synth": synth_test,
}

FIELDS = ("id", "problem", "answer", "solution", "difficulty", "subject")
"""The fields a mapping may name; ``solution`` is split into steps (and gives the answer, its last
``\\boxed{}``, when there is no answer column), ``subject`` goes to ``meta``."""

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _number(value: Any) -> float | None:
    """A difficulty as a number: 3, "3" and "Level 3" all give 3.0."""
    if value is None or isinstance(value, (int, float)):
        return value
    found = _NUMBER.search(str(value))
    return float(found.group()) if found else None


def _answer_text(value: Any) -> Any:
    """A list of answers (several for multi-answer problems) as one comma-separated answer."""
    return ", ".join(str(a) for a in value) if isinstance(value, (list, tuple)) else value


def _mapped_answer(get: Mapping[str, Any], fields: Mapping[str, str], file, index) -> str:
    """The answer column's text, else the last ``\\boxed{}`` of the solution; an error naming the column if neither."""
    column, solution_column = fields.get("answer", "answer"), fields.get("solution", "solution")
    answer = get["answer"]
    if answer is not None:
        text = _answer_text(answer)
        if isinstance(text, str) and not text.strip():
            raise RecordError(file, index, column, "is empty")
        return text
    boxed = last_boxed(str(get["solution"])) if get["solution"] is not None else None
    if boxed is None:
        where = (f"and the solution ('{solution_column}') has no \\boxed{{}} answer" if get["solution"] is not None
                 else f"and there is no solution ('{solution_column}') to take a \\boxed{{}} answer from")
        raise RecordError(file, index, column, f"is missing {where}")
    if not boxed.strip():
        raise RecordError(file, index, solution_column, "has an empty \\boxed{} answer")
    return boxed


def mapped_converter(fields: Mapping[str, str] | None = None, source: str = "") -> Callable[..., Problem]:
    """A :func:`~scaffoldrl.records.read_records` converter reading our fields from the mapped columns."""
    fields = dict(fields or {})
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise InputError(f"unknown field(s) {sorted(unknown)} in the mapping; known: {', '.join(FIELDS)}")

    def convert(row, *, file, index) -> Problem:
        if not isinstance(row, Mapping):
            raise RecordError(file, index, "<row>", f"expected an object, got {type(row).__name__}")
        get = {ours: row.get(fields.get(ours, ours)) for ours in FIELDS}
        if get["problem"] is None or (isinstance(get["problem"], str) and not get["problem"].strip()):
            raise RecordError(file, index, fields.get("problem", "problem"), "is missing or empty")
        out = dict(row) | {
            "id": get["id"] if get["id"] is not None else f"{source}-{index}",
            "problem": get["problem"], "answer": _mapped_answer(get, fields, file, index),
            "difficulty": _number(get["difficulty"]), "source": row.get("source") or source,
        }
        if get["solution"] is not None and not row.get("steps"):
            out["steps"] = split_steps(str(get["solution"]))
        if get["subject"] is not None:
            meta = row.get("meta") or {}
            out["meta"] = (meta if isinstance(meta, dict) else {}) | {"subject": get["subject"]}
        return problem_from_dict(out, file=file, index=index)

    return convert


def read_sparkle_preview(path: str | Path) -> list[Problem]:
    """Problems from SPARKLE's annotated set: one row per subproblem, grouped by ``problem ID``.

    ``planning`` becomes the plan, the subproblems are ordered by
    ``subproblem_sequence``, ``difficulty_level`` the difficulty and the
    first of ``domains`` the subject.
    """
    rows: dict[str, list[tuple[int, Mapping]]] = defaultdict(list)
    for index, row in iter_rows(path):
        if isinstance(row, RecordError):
            raise row
        if row.get("problem ID") is None:
            raise RecordError(path, index, "problem ID", "is missing")
        rows[str(row["problem ID"])].append((index, row))
    problems = []
    for pid, group in rows.items():
        group.sort(key=lambda item: item[1].get("subproblem_sequence") or 0)
        index, first = group[0]
        domains = list(first.get("domains") or [])
        problems.append(problem_from_dict({
            "id": pid, "problem": first.get("problem"), "answer": _answer_text(first.get("answer")),
            "steps": split_steps(first.get("reasoning") or ""), "plan": first.get("planning"),
            "knowledge": first.get("knowledge"), "difficulty": _number(first.get("difficulty_level")),
            "subproblems": [{"question": r.get("subproblem_question"), "answer": r.get("subproblem_answer")}
                            for _, r in group if r.get("subproblem_question") is not None],
            "source": first.get("source") or Path(path).stem,
            "meta": {"subject": domains[0] if domains else None, "domains": domains},
        }, file=path, index=index))
    return problems


def is_sparkle_preview(path: str | Path) -> bool:
    """Whether a file is in SPARKLE's released ``sparkle_preview`` schema (one row per subproblem)."""
    first = next(iter_rows(path), (0, None))[1]
    return isinstance(first, Mapping) and "problem ID" in first and "subproblem_question" in first


def read_benchmark_file(path: str | Path, fields: Mapping[str, str] | None = None, name: str = "",
                        skip_invalid: bool = False) -> list[Problem]:
    """A user's benchmark file: the ``sparkle_preview`` schema, or any columns through ``fields``.

    With ``skip_invalid`` bad rows of the second kind are skipped and listed in the result's ``.skipped``.
    """
    if is_sparkle_preview(path):
        return read_sparkle_preview(path)
    return read_records(path, converter=mapped_converter(fields, name or Path(path).stem), skip_invalid=skip_invalid)


def load_benchmark(spec: str, fields: Mapping[str, str] | None = None,
                   skip_invalid: bool = False) -> tuple[str, list[Problem]]:
    """``(name, problems)`` for ``NAME`` (one of :data:`BENCHMARKS`) or ``NAME=PATH`` (a file)."""
    name, sep, path = spec.partition("=")
    name = name.strip()
    if sep:
        return name, read_benchmark_file(path.strip(), fields, name, skip_invalid=skip_invalid)
    if name not in BENCHMARKS:
        raise UnknownName(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)} (or NAME=PATH for a file)")
    return name, list(BENCHMARKS[name]())


def subset(problems: list[Problem], limit: int | None) -> list[Problem]:
    """``limit`` problems spread evenly over the list (every level of a sorted set), the same on every call."""
    if not limit or limit >= len(problems):
        return problems
    return [problems[i * len(problems) // limit] for i in range(limit)]
