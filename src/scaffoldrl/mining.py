"""Mining hard problems (SPARKLE): the problems a model never solves in k samples at a temperature.

SPARKLE's stage 2 trains on the problems its stage-1 model fails (pass@k = 0,
k = 8 at T = 0.6 with its prompt); SEELE's training set is likewise the
DeepMath problems Qwen2.5-7B fails 8 of 8 times. :func:`mine_hard` draws k
samples of every problem through any generation backend (local transformers,
vLLM, an OpenAI-compatible server), grades them with the shared grader and
keeps the problems with at most ``max_correct`` right samples (0: pass@k = 0).

The run folder resumes like an evaluation (it is one: the sample store of
:mod:`scaffoldrl.evaluate`, every sample with its own seed), so a killed run
continues where it stopped and ends with the samples of an uninterrupted one.
It holds ``samples.jsonl``, ``run.json`` (the settings a rerun must match),
the per-problem pass counts (``pass_counts.jsonl``, or CSV), the hard records
(``hard.jsonl`` by default) and ``mine.json`` (the counts).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .evaluate import Protocol, Sampling, level_key, make_task, open_run, run_tasks
from .generation import Backend
from .records import Problem, write_records

COUNT_FIELDS = ("id", "samples", "correct", "hard", "difficulty")
"""The columns of the pass-counts file, one row per problem."""


@dataclass
class Mined:
    """What :func:`mine_hard` found and wrote."""

    hard: list[Problem]
    counts: list[dict]
    """One row per problem: ``id``, ``samples`` (k), ``correct`` (how many were right), ``hard``, ``difficulty``."""
    records: Path
    counts_path: Path
    k: int
    temperature: float
    max_correct: int = 0
    generated: int = 0
    reused: int = 0
    by_level: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The counts as plain data (``mine.json``): files, k, temperature, candidates, hard, per level."""
        return {"records": str(self.records), "counts": str(self.counts_path), "k": self.k,
                "temperature": self.temperature, "max_correct": self.max_correct, "candidates": len(self.counts),
                "hard": len(self.hard), "by_level": self.by_level, "generated": self.generated,
                "reused": self.reused}


def mining_protocol(base: Protocol | str = "sparkle", k: int | None = None, temperature: float | None = None,
                    top_p: float | None = None, max_new_tokens: int | None = None) -> Protocol:
    """A protocol's prompt and seed with the mining sampling: its default sampling unless k / T / top-p are given.

    The ``sparkle`` preset gives SPARKLE's mining: k = 8 at T = 0.6, top-p 1,
    3000 new tokens.
    """
    base = Protocol.load(base) if isinstance(base, str) else base
    d = base.default
    sampling = Sampling(n=k if k is not None else d.n, temperature=d.temperature if temperature is None else temperature,
                        top_p=d.top_p if top_p is None else top_p)
    return Protocol(name="mine", prompt=base.prompt, default=sampling, seed=base.seed,
                    max_new_tokens=max_new_tokens or base.max_new_tokens, bootstrap=base.bootstrap)


def write_counts(rows: Sequence[dict], path: str | Path) -> Path:
    """Write the pass counts as JSONL, or as CSV when ``path`` ends in ``.csv``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COUNT_FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def mine_hard(backend: Backend, model: str, problems: Sequence[Problem], out: str | Path,
              protocol: Protocol | None = None, *, max_correct: int = 0, name: str = "mine",
              records: str | Path | None = None, counts: str | Path | None = None, batch_size: int = 64,
              grader=None, progress: bool = True) -> Mined:
    """Sample every problem ``protocol.default.n`` times and keep those with at most ``max_correct`` right answers.

    ``protocol`` defaults to :func:`mining_protocol` (SPARKLE's: k = 8 at
    T = 0.6). ``name`` is the benchmark name in ``samples.jsonl`` (it is part
    of every sample's seed). ``records`` (default ``out/hard.jsonl``; any
    records format) and ``counts`` (default ``out/pass_counts.jsonl``; ``.csv``
    for CSV) are where the hard problems and the per-problem counts go. A rerun
    with the same ``out`` reuses the samples already drawn.
    """
    from .verify import get_grader

    protocol = protocol or mining_protocol()
    if max_correct < 0 or max_correct >= protocol.default.n:
        raise ValueError(f"max_correct must be in [0, k) = [0, {protocol.default.n}), got {max_correct}")
    repeated = sorted(i for i, n in Counter(p.id for p in problems).items() if n > 1)
    if repeated:
        raise ValueError(f"problem ids must be unique to count samples per problem; repeated: {repeated[:5]}")
    out = Path(out)
    grader = grader or get_grader()
    tasks = [make_task(protocol, name, p, j, prompt) for p in problems
             for prompt in [backend.render(protocol.user_turn(p.problem))] for j in range(protocol.default.n)]
    with open_run(out, model, protocol, protocol.max_new_tokens) as store:
        reused = sum(t.key in store for t in tasks)
        generated = run_tasks(tasks, backend, store, grader, max_new_tokens=protocol.max_new_tokens,
                              batch_size=batch_size, progress=progress, label="mining")
        correct = {p.id: 0 for p in problems}
        for t in tasks:
            correct[t.problem_id] += bool(store.rows[t.key]["correct"])
    rows, hard, by_level = [], [], {}
    for p in problems:
        is_hard = correct[p.id] <= max_correct
        rows.append({"id": p.id, "samples": protocol.default.n, "correct": correct[p.id], "hard": is_hard,
                     "difficulty": p.difficulty})
        if is_hard:
            hard.append(p)
        if p.difficulty is not None:
            cell = by_level.setdefault(level_key(p.difficulty), {"candidates": 0, "hard": 0})
            cell["candidates"] += 1
            cell["hard"] += is_hard
    result = Mined(hard, rows, write_records(hard, records or out / "hard.jsonl"),
                   write_counts(rows, counts or out / "pass_counts.jsonl"), protocol.default.n,
                   protocol.default.temperature, max_correct, generated, reused,
                   dict(sorted(by_level.items(), key=lambda kv: float(kv[0]))))
    (out / "mine.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result
