"""Loaders for the public datasets vendored in ``scaffoldrl/vendor`` (see its PROVENANCE.md).

Each source maps its own columns onto :class:`~scaffoldrl.records.Problem`;
a row that does not fit raises :class:`~scaffoldrl.records.RecordError`
naming file, row and field (or is skipped with ``skip_invalid=True``).
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping

from .extract import last_boxed
from .records import Problem, RecordError, RecordList, Subproblem, UnknownName, read_records
from .steps import split_steps

VENDOR = Path(str(resources.files("scaffoldrl") / "vendor"))

_CALC = re.compile(r"<<([^>]*)>>")


def _require(row: Mapping[str, Any], name: str, where: tuple) -> Any:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RecordError(*where, name, "is missing or empty")
    return value


def _gsm8k_steps(answer: str, where: tuple) -> tuple[list[str], str]:
    body, sep, final = answer.rpartition("####")
    if not sep or not final.strip():
        raise RecordError(*where, "answer", "has no '#### N' final answer")
    steps = [_CALC.sub("", line).strip() for line in body.strip().splitlines() if line.strip()]
    return steps, final.strip().replace(",", "")


def _gsm8k(row, *, file, index, source="gsm8k") -> Problem:
    where = (file, index)
    steps, final = _gsm8k_steps(_require(row, "answer", where), where)
    return Problem(id=f"{source}-{row.get('idx', index)}", problem=_require(row, "question", where),
                   answer=final, steps=steps, source=source)


def _gsm8k_socratic(row, *, file, index) -> Problem:
    """Socratic GSM8K: every step is ``subquestion ** step``: a real subproblem chain."""
    where = (file, index)
    raw_lines, final = _gsm8k_steps(_require(row, "answer", where), where)
    answer_lines = row["answer"].rpartition("####")[0].strip().splitlines()
    steps, subs = [], []
    for line in (l for l in answer_lines if l.strip()):
        question, sep, step = line.partition(" ** ")
        if not sep:
            raise RecordError(*where, "answer", f"step without 'question ** step': {line[:60]!r}")
        calc = _CALC.findall(step)
        numbers = re.findall(r"-?\d[\d,]*\.?\d*", _CALC.sub("", step))
        result = calc[-1].rpartition("=")[2] if calc else (numbers[-1] if numbers else "")
        steps.append(_CALC.sub("", step).strip())
        subs.append(Subproblem(question.strip(), result.replace(",", "").rstrip(".")))
    return Problem(id=f"gsm8k_socratic-{index}", problem=_require(row, "question", where), answer=final,
                   steps=steps, subproblems=subs, source="gsm8k_socratic")


def _math500(row, *, file, index) -> Problem:
    where = (file, index)
    level = row.get("level")
    return Problem(id=_require(row, "unique_id", where), problem=_require(row, "problem", where),
                   answer=str(_require(row, "answer", where)),
                   steps=split_steps(_require(row, "solution", where)),
                   difficulty=float(level) if isinstance(level, (int, float)) else None,
                   source="math500", meta={"subject": row.get("subject")})


def _competition(source: str) -> Callable[..., Problem]:
    def convert(row, *, file, index) -> Problem:
        where = (file, index)
        answer = _require(row, "answer", where)
        if isinstance(answer, float) and answer.is_integer():
            answer = int(answer)
        meta = {k: row[k] for k in ("url", "year", "aime_number", "problem_number") if k in row}
        diff = row.get("difficulty")
        return Problem(id=f"{source}-{row.get('id', index)}", problem=_require(row, "problem", where),
                       answer=str(answer), steps=split_steps(row.get("solution") or ""),
                       difficulty=float(diff) if isinstance(diff, (int, float)) else None,
                       source=source, meta=meta)
    return convert


def _minerva(row, *, file, index) -> Problem:
    where = (file, index)
    solution = _require(row, "solution", where)
    answer = last_boxed(solution)
    if not answer:
        raise RecordError(*where, "solution", "has no \\boxed{} answer")
    return Problem(id=f"minerva_math-{row.get('idx', index)}", problem=_require(row, "problem", where),
                   answer=answer, steps=split_steps(solution), source="minerva_math",
                   meta={"subject": row.get("type")})


def _olympiad(row, *, file, index) -> Problem:
    where = (file, index)
    finals = _require(row, "final_answer", where)
    if not isinstance(finals, list) or not finals:
        raise RecordError(*where, "final_answer", "expected a non-empty list")
    answer = ", ".join(a.strip().strip("$") for a in finals)
    # ``solution`` lists alternative full solutions: the first is the reference, the rest stay in meta
    first, *alternatives = row.get("solution") or [""]
    return Problem(id=f"olympiadbench-{row.get('id', index)}", problem=_require(row, "question", where),
                   answer=answer, steps=split_steps(first), source="olympiadbench",
                   meta={k: row.get(k) for k in ("subfield", "unit", "answer_type", "is_multiple_answer")}
                   | {"subject": row.get("subfield"), "alternative_solutions": alternatives})


# name -> (file under vendor/, converter)
SOURCES: dict[str, tuple[str, Callable[..., Problem]]] = {
    "math500": ("benchmarks/math500.jsonl", _math500),
    "gsm8k": ("benchmarks/gsm8k.jsonl", _gsm8k),
    "aime24": ("benchmarks/aime24.jsonl", _competition("aime24")),
    "amc23": ("benchmarks/amc23.jsonl", _competition("amc23")),
    "minerva_math": ("benchmarks/minerva_math.jsonl", _minerva),
    "olympiadbench": ("benchmarks/olympiadbench.jsonl", _olympiad),
    "gsm8k_train": ("gsm8k/train.jsonl", lambda row, *, file, index: _gsm8k(row, file=file, index=index, source="gsm8k_train")),
    "gsm8k_socratic": ("gsm8k/test_socratic.jsonl", _gsm8k_socratic),
    "aime_1983_2023": ("train/aime_1983_2023.json", _competition("aime_1983_2023")),
}


def load_source(name: str, *, skip_invalid: bool = False) -> RecordList:
    """Load a vendored dataset by name (see ``SOURCES``)."""
    if name not in SOURCES:
        raise UnknownName(f"unknown source {name!r}; known: {', '.join(SOURCES)}")
    rel, convert = SOURCES[name]
    return read_records(VENDOR / rel, skip_invalid=skip_invalid, converter=convert)
