"""From a user's dataset file to scaffoldrl records: mapped columns, solutions split into steps, answers checked.

A JSONL / JSON / Parquet file or a ``save_to_disk`` folder is read through a
field mapping (:func:`scaffoldrl.benchmarks.mapped_converter`: ``problem=question``
reads the problem from the column ``question``). A ``solution`` string is split
into reference steps with SPARKLE's chunker (:func:`scaffoldrl.steps.split_steps`);
the answer is the answer column, or the last ``\\boxed{}`` of the solution when
there is none. A row with no problem, or no answer either way, or a repeated
id, is a :class:`~scaffoldrl.records.RecordError` naming the file, row and
column, or, with ``skip_invalid``, skipped and counted. The result says how
many records got how many steps: a method that hints with reference steps
(SEELE, UFT, Prefix-RFT, LUFFY, SPARKLE's PSS) refuses records without any.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from .benchmarks import mapped_converter
from .records import Problem, RecordError, RecordList, read_records, write_records


def steps_histogram(problems: Iterable[Problem]) -> dict[int, int]:
    """Number of steps → number of records with that many, in increasing order of steps."""
    return dict(sorted(Counter(len(p.steps) for p in problems).items()))


def format_histogram(histogram: Mapping[int, int], width: int = 40) -> list[str]:
    """The histogram as text lines, one per step count, with a bar scaled to ``width`` characters."""
    top = max(histogram.values(), default=0)
    return [f"{steps:>5} step{'s' if steps != 1 else ' '} | {count:>6} {'#' * max(1, round(width * count / top)) if count else ''}"
            for steps, count in histogram.items()]


@dataclass
class Prepared:
    """What :func:`prepare` read and wrote: the records, the rows skipped, and how the steps came out."""

    records: RecordList
    input: Path
    out: Path | None = None
    answers_from_solution: int = 0
    """Records whose answer is the last ``\\boxed{}`` of their solution (no answer column, or a null in it)."""
    histogram: dict[int, int] = field(default_factory=dict)

    @property
    def skipped(self) -> list[RecordError]:
        """The rows left out (with ``skip_invalid``), each error naming its file, row and column."""
        return self.records.skipped

    @property
    def without_steps(self) -> int:
        """Records with no reference steps (no solution, or an empty one)."""
        return self.histogram.get(0, 0)

    def report(self) -> list[str]:
        """A few lines for a person: counts, the steps histogram, what was skipped."""
        lines = [f"{self.input}: {len(self.records)} records"
                 + (f" -> {self.out}" if self.out else "")
                 + f"; skipped {len(self.skipped)} invalid rows"
                 + (f"; {self.answers_from_solution} answers taken from the solution's \\boxed{{}}"
                    if self.answers_from_solution else "")]
        lines.append("reference steps per record:")
        lines += format_histogram(self.histogram)
        if self.without_steps:
            lines.append(f"{self.without_steps} records have no steps: methods that hint with reference steps "
                         f"(seele, uft, prefix_rft, luffy, pss) refuse them; map a solution column with "
                         f"--field solution=COLUMN")
        for error in self.skipped[:5]:
            lines.append(f"skipped: {error}")
        if len(self.skipped) > 5:
            lines.append(f"... and {len(self.skipped) - 5} more skipped rows")
        return lines


def prepare(input: str | Path, out: str | Path | None = None, fields: Mapping[str, str] | None = None, *,
            source: str | None = None, skip_invalid: bool = False) -> Prepared:
    """Read ``input`` through the field mapping into records and write them to ``out`` (when given).

    ``source`` (default: the input's file name without suffix) names the
    records' origin and the ids of rows without an id column
    (``{source}-{row}``).
    """
    input = Path(input)
    fields = dict(fields or {})
    source = source if source is not None else input.stem
    convert = mapped_converter(fields, source)
    answer_column, id_column = fields.get("answer", "answer"), fields.get("id", "id")
    seen: dict[str, int] = {}
    from_solution = 0

    def converter(row, *, file, index) -> Problem:
        nonlocal from_solution
        problem = convert(row, file=file, index=index)
        if problem.id in seen:
            raise RecordError(file, index, id_column, f"repeats the id {problem.id!r} of row {seen[problem.id]}")
        seen[problem.id] = index
        from_solution += row.get(answer_column) is None
        return problem

    records = read_records(input, skip_invalid=skip_invalid, converter=converter)
    result = Prepared(records, input, answers_from_solution=from_solution, histogram=steps_histogram(records))
    if out is not None:
        result.out = write_records(records, out)
    return result
