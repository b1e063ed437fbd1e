"""Benchmark evaluation: protocols, a resumable sample store, and summaries per benchmark, level and subject.

A run is a list of :class:`Task` (one sample of one prompt). Finished samples
are graded and appended to ``DIR/samples.jsonl`` chunk by chunk; a rerun
reads the file back and generates only what is missing, and since every
sample has its own seed (:func:`~scaffoldrl.generation.sample_seed` of its
key) the resumed run ends with exactly the samples of an uninterrupted one.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from itertools import groupby
from pathlib import Path
from typing import Callable, Iterable, Sequence

import yaml

from . import metrics
from .benchmarks import load_benchmark, subset
from .generation import Backend, SamplingConfig, sample_seed
from .progress import progress_bar
from .prompts import sparkle_user_turn
from .records import InputError, Problem
from .runs import check_settings

PROTOCOLS = Path(str(resources.files("scaffoldrl") / "protocols"))


@dataclass
class Sampling:
    """How the samples of one benchmark are drawn."""

    n: int = 1
    """Samples per problem (avg@n, pass@k and maj@k for k ≤ n)."""
    temperature: float = 0.0
    """0 means greedy (then n must be 1)."""
    top_p: float = 1.0

    def __post_init__(self):
        if self.n < 1 or not 0 < self.top_p <= 1 or self.temperature < 0:
            raise ValueError(f"bad sampling {self}: need n >= 1, 0 < top_p <= 1, temperature >= 0")
        if self.temperature == 0 and self.n != 1:
            raise ValueError(f"greedy sampling draws one sample per problem, got n={self.n}")

    @property
    def greedy(self) -> bool:
        """Temperature 0: one sample, argmax decoding."""
        return self.temperature == 0


@dataclass
class Protocol:
    """An evaluation protocol: the prompt, how each benchmark is sampled, and how results are reported.

    Presets (``protocols/*.yaml`` in the package): ``sparkle``, ``seele``,
    ``greedy``; any other YAML file with these fields is a custom protocol.
    """

    name: str = "custom"
    prompt: str = "sparkle"
    """``sparkle`` (SPARKLE's instruction and turn), or a template with a ``{question}`` field."""
    default: Sampling = field(default_factory=Sampling)
    benchmarks: dict[str, Sampling] = field(default_factory=dict)
    """Per-benchmark sampling that replaces ``default``."""
    max_new_tokens: int = 3000
    seed: int = 0
    """Mixed into every sample's seed: another seed draws other samples."""
    pass_k: list[int] | None = None
    """The k of pass@k and maj@k; default powers of two up to n."""
    bootstrap: int = 1000
    """Bootstrap resamples (over problems) behind every confidence interval."""
    confidence: float = 0.95

    def __post_init__(self):
        if isinstance(self.default, dict):
            self.default = Sampling(**self.default)
        self.benchmarks = {k: Sampling(**v) if isinstance(v, dict) else v for k, v in self.benchmarks.items()}
        if self.prompt != "sparkle" and "{question}" not in self.prompt:
            raise ValueError("a prompt template needs a {question} field (or use prompt: sparkle)")

    def sampling(self, benchmark: str) -> Sampling:
        """The benchmark's own sampling, else the protocol's default."""
        return self.benchmarks.get(benchmark, self.default)

    def user_turn(self, question: str) -> str:
        """The protocol's user turn for a question (SPARKLE's prompt or a template)."""
        return sparkle_user_turn(question) if self.prompt == "sparkle" else self.prompt.replace("{question}", question)

    def to_dict(self) -> dict:
        """The protocol as plain data (saved with a run, so a resumed run can check it)."""
        return asdict(self)

    @classmethod
    def load(cls, name_or_path: str | Path) -> Protocol:
        """A preset by name (``sparkle``, ``seele``, ``greedy``) or a YAML file."""
        path = Path(name_or_path)
        if not path.suffix and (PROTOCOLS / f"{name_or_path}.yaml").exists():
            path = PROTOCOLS / f"{name_or_path}.yaml"
        if not path.is_file():
            presets = sorted(p.stem for p in PROTOCOLS.glob("*.yaml"))
            raise FileNotFoundError(f"no protocol {str(name_or_path)!r}: a preset ({', '.join(presets)}) or a YAML file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise InputError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
        unknown = set(data) - {f.name for f in fields(cls)} if isinstance(data, dict) else set()
        if not isinstance(data, dict) or unknown:
            raise InputError(f"{path}: unknown protocol field(s) {sorted(unknown)}" if unknown
                             else f"{path}: a protocol is a YAML mapping")
        return cls(**data)


KEY_FIELDS = ("benchmark", "condition", "problem_id", "link", "sample")
"""What identifies a sample; ``condition`` and ``link`` are set by the fine-grained analysis only."""


@dataclass
class Task:
    """One sample to draw: the rendered prompt, its gold answer, its sampling and its own seed."""

    benchmark: str
    problem_id: str
    sample: int
    prompt: str
    gold: str
    sampling: Sampling
    seed: int
    condition: str | None = None
    link: int | None = None
    difficulty: float | None = None
    subject: str | None = None

    @property
    def key(self) -> tuple:
        """What identifies a sample in a run folder (:data:`KEY_FIELDS`)."""
        return tuple(getattr(self, f) for f in KEY_FIELDS)

    def row(self, completion: str, verdict) -> dict:
        """The samples.jsonl line: identity, prompt, completion and grade (unset fields left out)."""
        row = {f: getattr(self, f) for f in KEY_FIELDS} | {
            "prompt": self.prompt, "completion": completion, "gold": self.gold, "extracted": verdict.extracted,
            "correct": verdict.correct, "status": verdict.status, "difficulty": self.difficulty,
            "subject": self.subject, "seed": self.seed}
        return {k: v for k, v in row.items() if v is not None or k in ("extracted", "correct")}


def row_key(row: dict) -> tuple:
    """A saved sample's key, as :attr:`Task.key`."""
    return tuple(row.get(f) for f in KEY_FIELDS)


def make_task(protocol: Protocol, benchmark: str, problem: Problem, sample: int, prompt: str, *,
              gold: str | None = None, condition: str | None = None, link: int | None = None) -> Task:
    """A task seeded by its key, so the same sample always gets the same seed."""
    task = Task(benchmark, problem.id, sample, prompt, problem.answer if gold is None else gold,
                protocol.sampling(benchmark), 0, condition, link, problem.difficulty,
                (problem.meta or {}).get("subject"))
    task.seed = sample_seed(protocol.seed, *task.key)
    return task


class SampleStore:
    """``samples.jsonl``: one line per finished sample, appended and flushed chunk by chunk.

    Opening it reads back what earlier runs finished; a torn last line (a run
    killed while writing) is cut off, so nothing unfinished is trusted.
    While open it holds a lock: two runs cannot write the same file.
    ``key`` says what identifies a line (default :func:`row_key`, a sample's
    :data:`KEY_FIELDS`); other resumable runs (annotation) store other rows.
    """

    def __init__(self, path: str | Path, key: Callable[[dict], tuple] | None = None):
        self.path = Path(path)
        self.key = key or row_key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.path.with_name(f".{self.path.name}.lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RuntimeError(f"another run is writing {self.path}") from None
        self.rows: dict[tuple, dict] = {}
        if self.path.exists():
            data = self.path.read_bytes()
            whole = data[: data.rfind(b"\n") + 1]
            if len(whole) < len(data):
                with open(self.path, "r+b") as f:
                    f.truncate(len(whole))
            for line in whole.decode().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[self.key(row)] = row

    def __contains__(self, key: tuple) -> bool:
        return key in self.rows

    def append(self, rows: Sequence[dict]) -> None:
        """Save finished samples at once (a killed run loses only unfinished ones)."""
        if not rows:
            return
        with open(self.path, "a") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        for row in rows:
            self.rows[self.key(row)] = row

    def close(self) -> None:
        """Release the run folder's lock."""
        self._lock.close()

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_tasks(tasks: Iterable[Task], backend: Backend, store: SampleStore, grader, *, max_new_tokens: int,
              batch_size: int = 64, progress: bool = True, label: str = "sampling") -> int:
    """Draw every task not yet in ``store``, saving each chunk as soon as it is graded; returns how many.

    Tasks are grouped by sampling settings and sorted by prompt length so
    that chunks pad little; the order does not change any sample.
    """
    pending = sorted((t for t in tasks if t.key not in store),
                     key=lambda t: (t.sampling.temperature, t.sampling.top_p, len(t.prompt)))
    with progress_bar(progress, len(pending), label) as advance:
        for (temperature, top_p), group in groupby(pending, key=lambda t: (t.sampling.temperature, t.sampling.top_p)):
            group = list(group)
            config = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                                    batch_size=batch_size)
            for start in range(0, len(group), batch_size):
                chunk = group[start:start + batch_size]
                texts = backend.generate([t.prompt for t in chunk], config, [t.seed for t in chunk], progress=advance)
                verdicts = grader.grade_batch([(text, t.gold) for text, t in zip(texts, chunk)])
                store.append([t.row(text, v) for t, text, v in zip(chunk, texts, verdicts)])
    return len(pending)


def group_samples(rows: Iterable[dict], by: Callable[[dict], object] = lambda r: r["problem_id"]) -> dict:
    """``{group: [(correct, extracted), ...]}`` in sample order, for :func:`metrics.summarize`."""
    groups = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["sample"]):
        groups[by(row)].append((bool(row["correct"]), row.get("extracted")))
    return dict(groups)


def level_key(value) -> str:
    """A difficulty as a JSON key: 3.0 -> "3", 2.5 -> "2.5"."""
    return str(int(value)) if float(value).is_integer() else str(value)


def summarize_rows(rows: Sequence[dict], sampling: Sampling, protocol: Protocol, majority: bool = True) -> dict:
    """A benchmark's metrics with confidence intervals, overall and per difficulty level and subject."""
    def summary(part):
        return metrics.summarize(group_samples(part), greedy=sampling.greedy, ks=protocol.pass_k,
                                 majority=majority, resamples=protocol.bootstrap, confidence=protocol.confidence,
                                 seed=protocol.seed)

    out = summary(rows) | {"sampling": asdict(sampling)}
    for name, fieldname, fmt in (("by_difficulty", "difficulty", level_key), ("by_subject", "subject", str)):
        values = sorted({r[fieldname] for r in rows if r.get(fieldname) is not None})
        if values:
            out[name] = {fmt(v): summary([r for r in rows if r.get(fieldname) == v]) for v in values}
    return out


def open_run(out: str | Path, model: str, protocol: Protocol, max_new_tokens: int, **extra) -> SampleStore:
    """The sample store of run folder ``out``, after checking its settings match this run's."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = os.path.abspath(model) if Path(model).exists() else model
    check_settings(out, "run.json",
                   {"model": model, "protocol": protocol.to_dict(), "max_new_tokens": max_new_tokens, **extra})
    return SampleStore(out / "samples.jsonl")


def evaluate(backend: Backend, model: str, benchmarks: Sequence[str], protocol: Protocol, out: str | Path, *,
             limit: int | None = None, field_map: dict[str, str] | None = None, max_new_tokens: int | None = None,
             batch_size: int = 64, grader=None, progress: bool = True, skip_invalid: bool = False) -> dict:
    """Evaluate ``backend`` on ``benchmarks`` under ``protocol``; resumes from ``out/samples.jsonl``.

    Writes ``summary.json`` (``{benchmark: {metric: value, ...}}``) and the
    report; returns the summary plus ``_run`` counts (samples generated now
    and reused from earlier runs, and the bad rows of benchmark files skipped
    with ``skip_invalid``).
    """
    from .report import eval_report
    from .verify import get_grader

    grader = grader or get_grader()
    max_new_tokens = max_new_tokens or protocol.max_new_tokens
    loaded = [load_benchmark(spec, field_map, skip_invalid=skip_invalid) for spec in benchmarks]
    skipped = {name: len(getattr(problems, "skipped", ())) for name, problems in loaded}
    tasks: dict[str, list[Task]] = {}
    for name, problems in loaded:
        n = protocol.sampling(name).n
        tasks[name] = [make_task(protocol, name, p, j, prompt) for p in subset(problems, limit)
                       for prompt in [backend.render(protocol.user_turn(p.problem))] for j in range(n)]
    every = [t for ts in tasks.values() for t in ts]
    with open_run(out, model, protocol, max_new_tokens) as store:
        reused = sum(t.key in store for t in every)
        generated = run_tasks(every, backend, store, grader, max_new_tokens=max_new_tokens,
                              batch_size=batch_size, progress=progress)
        rows = {name: [store.rows[t.key] for t in ts] for name, ts in tasks.items()}
    summary = {name: summarize_rows(rows[name], protocol.sampling(name), protocol) for name in tasks}
    Path(out, "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    eval_report(summary, out, title=f"{model} — protocol {protocol.name}")
    return summary | {"_run": {"generated": generated, "reused": reused, "skipped": skipped}}
