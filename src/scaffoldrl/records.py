"""Problem records: the one type every part of scaffoldrl reads and writes.

A record carries what hint scaffolding needs beyond (problem, answer): the
reference solution as steps (hints are prefixes of it), and SPARKLE's
annotations (plan, knowledge, subproblem chain) for the fine-grained analysis.
Files are JSONL, Parquet, or a Hugging Face dataset saved with
``save_to_disk``. Bad rows raise :class:`RecordError` naming file, row and
field, or are skipped and counted when the caller asks for it explicitly. A
row without an ``id`` gets a stable one, a short hash of its problem text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping


@dataclass
class Subproblem:
    """One link of a subproblem chain: solved with the previous answers in context."""

    question: str
    answer: str


@dataclass
class Problem:
    """A math problem with its reference solution and optional annotations.

    ``steps`` is the reference solution split into steps; ``"\\n".join(steps)``
    is the solution text. ``plan`` never states intermediate results;
    ``knowledge`` lists the facts the solution uses; ``difficulty`` is a level
    (higher is harder) on the source's own scale.
    """

    id: str
    problem: str
    answer: str
    steps: list[str] = field(default_factory=list)
    plan: str | None = None
    knowledge: str | None = None
    subproblems: list[Subproblem] = field(default_factory=list)
    difficulty: float | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def solution(self) -> str:
        """The reference steps joined by newlines: the text a token-unit hint is cut from."""
        return "\n".join(self.steps)

    def to_dict(self) -> dict[str, Any]:
        """The record as a row (``meta`` as JSON text, so Parquet has one type per column)."""
        d = asdict(self)
        # Parquet needs one type per column: free metadata travels as JSON text.
        d["meta"] = json.dumps(self.meta, ensure_ascii=False, sort_keys=True)
        return d


class InputError(ValueError):
    """Input a user can fix (a file, a row, a setting); the message says which and why, in one line.

    The command line prints such errors as one line and exits non-zero, without a traceback.
    """


class UnknownName(InputError, KeyError):
    """A name that is not one of the known ones (a benchmark, a source); the message lists those."""

    __str__ = Exception.__str__  # the message, not KeyError's quoted repr


class RecordError(InputError):
    """A row that cannot become a :class:`Problem`; says where and why."""

    def __init__(self, file: str | Path, row: int, field_name: str, message: str):
        self.file, self.row, self.field = str(file), row, field_name
        super().__init__(f"{file}: row {row}: field '{field_name}': {message}")


class RecordList(list):
    """A list of problems (or raw rows) that remembers the rows skipped while reading it."""

    def __init__(self, items: Iterable[Problem] = (), skipped: list[RecordError] | None = None):
        super().__init__(items)
        self.skipped: list[RecordError] = skipped or []


def _text(value: Any, *, name: str, where: tuple, allow_empty: bool = False) -> str:
    if isinstance(value, bool) or value is None:
        raise RecordError(*where, name, f"expected text, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an answer stored as 27.0 means "27"
    if isinstance(value, (int, float)):
        value = str(value)
    if not isinstance(value, str):
        raise RecordError(*where, name, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RecordError(*where, name, "is empty")
    return value


def stable_id(problem: str) -> str:
    """The id of a record that has none: a short hash of its problem text, the same in every run and file order."""
    return "id-" + hashlib.sha1(problem.encode("utf-8")).hexdigest()[:12]


def problem_from_dict(row: Mapping[str, Any], *, file: str | Path = "<dict>", index: int = 0) -> Problem:
    """Validate one row in scaffoldrl's own schema and build a :class:`Problem`.

    A row without an ``id`` gets :func:`stable_id` of its problem text.
    """
    where = (file, index)
    if not isinstance(row, Mapping):
        raise RecordError(file, index, "<row>", f"expected an object, got {type(row).__name__}")
    for name in ("problem", "answer"):
        if row.get(name) is None:
            raise RecordError(*where, name, "is missing")
    steps = row.get("steps") or []
    if isinstance(steps, str) or not isinstance(steps, (list, tuple)):
        raise RecordError(*where, "steps", f"expected a list of strings, got {type(steps).__name__}")
    subs = []
    for j, s in enumerate(row.get("subproblems") or []):
        if not isinstance(s, Mapping) or "question" not in s or "answer" not in s:
            raise RecordError(*where, f"subproblems[{j}]", "expected {question, answer}")
        subs.append(Subproblem(_text(s["question"], name=f"subproblems[{j}].question", where=where),
                               _text(s["answer"], name=f"subproblems[{j}].answer", where=where)))
    difficulty = row.get("difficulty")
    if difficulty is not None:
        if isinstance(difficulty, bool) or not isinstance(difficulty, (int, float)):
            raise RecordError(*where, "difficulty", f"expected a number, got {difficulty!r}")
        difficulty = float(difficulty)
    meta = row.get("meta") or {}
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except json.JSONDecodeError as e:
            raise RecordError(*where, "meta", f"not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise RecordError(*where, "meta", f"expected an object, got {type(meta).__name__}")
    optional = {}
    for name in ("plan", "knowledge"):
        if row.get(name) is not None:
            optional[name] = _text(row[name], name=name, where=where, allow_empty=True)
    problem = _text(row["problem"], name="problem", where=where)
    return Problem(
        id=stable_id(problem) if row.get("id") is None else _text(row["id"], name="id", where=where),
        problem=problem,
        answer=_text(row["answer"], name="answer", where=where),
        steps=[_text(s, name=f"steps[{j}]", where=where) for j, s in enumerate(steps)],
        subproblems=subs,
        difficulty=difficulty,
        source=_text(row.get("source") or "", name="source", where=where, allow_empty=True),
        meta=meta,
        **optional,
    )


def iter_rows(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (row number, raw row) from JSONL (1-based lines), JSON list, Parquet or a saved dataset."""
    path = Path(path)
    if path.is_dir():
        import datasets

        ds = datasets.load_from_disk(str(path))
        if isinstance(ds, datasets.DatasetDict):
            raise RecordError(path, 0, "<file>", f"holds splits {list(ds)}; pass one split's folder")
        yield from enumerate(ds, start=0)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), start=0)
    elif path.suffix == ".json":
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except UnicodeDecodeError:
                raise RecordError(path, 0, "<text>", "not UTF-8 text") from None
            except json.JSONDecodeError as e:
                raise RecordError(path, 0, "<json>", f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
        if not isinstance(data, list):
            raise RecordError(path, 0, "<file>", "a .json file must hold a list of rows")
        yield from enumerate(data, start=0)
    elif path.suffix == ".jsonl":
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    line.encode("utf-8")
                except UnicodeEncodeError:
                    yield n, RecordError(path, n, "<text>", "not UTF-8 text")
                    continue
                try:
                    yield n, json.loads(line)
                except json.JSONDecodeError as e:
                    yield n, RecordError(path, n, "<json>", f"not valid JSON: {e.msg} (column {e.colno})")
    else:
        raise InputError(f"{path}: unknown format (expected .jsonl, .json, .parquet or a dataset folder)")


def read_records(path: str | Path, *, skip_invalid: bool = False, converter=None) -> RecordList:
    """Read problems from a file; ``converter(row, file=, index=)`` maps foreign schemas.

    With ``skip_invalid`` bad rows are dropped and listed in ``.skipped``;
    otherwise the first bad row raises :class:`RecordError`.
    """
    converter = converter or problem_from_dict
    out, skipped = [], []
    for index, row in iter_rows(path):
        try:
            if isinstance(row, RecordError):
                raise row
            out.append(converter(row, file=path, index=index))
        except RecordError as e:
            if not skip_invalid:
                raise
            skipped.append(e)
    return RecordList(out, skipped)


def read_rows(path: str | Path, *, required: Iterable[str] = (), skip_invalid: bool = False) -> RecordList:
    """The raw rows (objects) of a JSONL, JSON, Parquet or dataset file, each holding the columns ``required``.

    A row that is not valid JSON, not an object, or lacks a required column
    raises :class:`RecordError` (file, row, field), or with ``skip_invalid`` is
    skipped and listed in ``.skipped``.
    """
    required = tuple(required)
    out, skipped = [], []
    for index, row in iter_rows(path):
        try:
            if isinstance(row, RecordError):
                raise row
            if not isinstance(row, Mapping):
                raise RecordError(path, index, "<row>", f"expected an object, got {type(row).__name__}")
            for name in required:
                if name not in row:
                    raise RecordError(path, index, name, "is missing")
            out.append(row)
        except RecordError as e:
            if not skip_invalid:
                raise
            skipped.append(e)
    return RecordList(out, skipped)


def write_records(records: Iterable[Problem], path: str | Path) -> Path:
    """Write problems as JSONL, Parquet or a saved dataset (chosen by the path's suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r.to_dict() for r in records]
    if path.suffix == ".jsonl":
        tmp = path.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(path)
    elif path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows, schema=_arrow_schema()), path)
    elif path.suffix == "":
        import datasets
        import pyarrow as pa

        datasets.Dataset(pa.Table.from_pylist(rows, schema=_arrow_schema())).save_to_disk(str(path))
    else:
        raise InputError(f"{path}: unknown format (use .jsonl, .parquet, or a folder name without suffix)")
    return path


def _arrow_schema():
    import pyarrow as pa

    types = {
        "id": pa.string(), "problem": pa.string(), "answer": pa.string(),
        "steps": pa.list_(pa.string()), "plan": pa.string(), "knowledge": pa.string(),
        "subproblems": pa.list_(pa.struct([("question", pa.string()), ("answer", pa.string())])),
        "difficulty": pa.float64(), "source": pa.string(), "meta": pa.string(),
    }
    return pa.schema([(f.name, types[f.name]) for f in fields(Problem)])
