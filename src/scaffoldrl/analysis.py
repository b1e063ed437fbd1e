"""SPARKLE's fine-grained analysis: how a plan, a knowledge base or a subproblem chain changes accuracy.

Conditions: ``plain``; ``plan`` and ``knowledge``, the problem
followed by SPARKLE's exact hint sentence and the annotation; ``chain``, the
subproblems solved in order, each prompt holding the problem and the earlier
subquestions with the model's own answers. A sampled chain counts only if
every link is right, so it stops at its first wrong link. Every condition is
scored like a benchmark (avg@n under the protocol); the deltas against
``plain`` are paired per problem, overall and per difficulty level. Runs
resume like evaluations: chain links are drawn round by round, each round
built from the saved answers of the previous one.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from . import metrics
from .benchmarks import load_benchmark, read_benchmark_file, subset
from .evaluate import Protocol, level_key, make_task, open_run, run_tasks, summarize_rows
from .generation import Backend
from .prompts import with_knowledge, with_plan
from .records import InputError, Problem

CONDITIONS = ("plain", "plan", "knowledge", "chain")


def condition_question(problem: Problem, condition: str) -> str | None:
    """The question under ``condition``, or None when the problem lacks that annotation."""
    if condition == "plain":
        return problem.problem
    if condition == "plan":
        return with_plan(problem.problem, problem.plan) if problem.plan else None
    if condition == "knowledge":
        return with_knowledge(problem.problem, problem.knowledge) if problem.knowledge else None
    raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")


def chain_question(problem: Problem, link: int, answers: Sequence[str]) -> str:
    """Link ``link`` (from 0) of the chain: the problem, earlier subquestions with ``answers``, this subquestion."""
    lines = [problem.problem, ""]
    for j, (sub, answer) in enumerate(zip(problem.subproblems[:link], answers), start=1):
        lines += [f"Q{j}: {sub.question}", f"A{j}: {answer}"]
    lines.append(f"Q{link + 1}: {problem.subproblems[link].question}")
    return "\n".join(lines)


def load_annotated(spec: str, skip_invalid: bool = False) -> tuple[str, list[Problem]]:
    """A benchmark name (``synth``, ``gsm8k_socratic``, ...), ``NAME=PATH``, or a file path (name: its stem)."""
    if "=" not in spec and Path(spec).exists():
        return Path(spec).stem, read_benchmark_file(spec, skip_invalid=skip_invalid)
    return load_benchmark(spec, skip_invalid=skip_invalid)


def _paired_delta(rows: Sequence[dict], plain: Sequence[dict], protocol: Protocol) -> dict:
    """Mean per-problem (condition − plain) accuracy over the problems both have, with a bootstrap interval."""
    def per_problem(part):
        scores = defaultdict(list)
        for r in part:
            scores[r["problem_id"]].append(bool(r["correct"]))
        return {pid: float(np.mean(v)) for pid, v in scores.items()}

    ours, base = per_problem(rows), per_problem(plain)
    diffs = [ours[pid] - base[pid] for pid in ours if pid in base]
    if not diffs:
        return {"delta": None, "ci": None, "problems": 0}
    ci = metrics.bootstrap_ci(diffs, protocol.bootstrap, protocol.confidence, protocol.seed)
    return {"delta": float(np.mean(diffs)), "ci": list(ci), "problems": len(diffs)}


def _deltas(rows: Sequence[dict], plain: Sequence[dict], protocol: Protocol) -> dict:
    out = _paired_delta(rows, plain, protocol)
    levels = sorted({r["difficulty"] for r in rows if r.get("difficulty") is not None})
    if levels:
        out["by_difficulty"] = {
            level_key(v): _paired_delta([r for r in rows if r.get("difficulty") == v],
                                     [r for r in plain if r.get("difficulty") == v], protocol) for v in levels}
    return out


def analyze(backend: Backend, model: str, data: str, protocol: Protocol, out: str | Path, *,
            conditions: Sequence[str] = CONDITIONS, limit: int | None = None, max_new_tokens: int | None = None,
            batch_size: int = 64, grader=None, progress: bool = True, skip_invalid: bool = False) -> dict:
    """Run the fine-grained analysis of ``backend`` on the annotated problems ``data``; resumable in ``out``.

    Writes ``analysis.json`` and the report (per-level table, plots) and
    returns the result plus ``_run`` counts (bad rows skipped with ``skip_invalid`` included).
    """
    from .report import analysis_report
    from .verify import get_grader

    unknown = set(conditions) - set(CONDITIONS)
    if unknown:
        raise InputError(f"unknown condition(s) {sorted(unknown)}; known: {', '.join(CONDITIONS)}")
    grader = grader or get_grader()
    max_new_tokens = max_new_tokens or protocol.max_new_tokens
    name, problems = load_annotated(data, skip_invalid=skip_invalid)
    skipped = len(getattr(problems, "skipped", ()))
    problems = subset(problems, limit)
    n = protocol.sampling(name).n
    render = lambda question: backend.render(protocol.user_turn(question))  # noqa: E731
    static = [make_task(protocol, name, p, j, prompt, condition=c)
              for c in conditions if c != "chain" for p in problems
              if (q := condition_question(p, c)) is not None for prompt in [render(q)] for j in range(n)]
    chained = [p for p in problems if p.subproblems] if "chain" in conditions else []
    with open_run(out, model, protocol, max_new_tokens) as store:
        generated = run_tasks(static, backend, store, grader, max_new_tokens=max_new_tokens,
                              batch_size=batch_size, progress=progress, label="hint conditions")
        for link in range(max((len(p.subproblems) for p in chained), default=0)):
            tasks = []
            for p in (p for p in chained if len(p.subproblems) > link):
                for j in range(n):
                    prev = [store.rows.get((name, "chain", p.id, i + 1, j)) for i in range(link)]
                    if all(r is not None and r["correct"] for r in prev):
                        question = chain_question(p, link, [r["extracted"] for r in prev])
                        tasks.append(make_task(protocol, name, p, j, render(question),
                                               gold=p.subproblems[link].answer, condition="chain", link=link + 1))
            generated += run_tasks(tasks, backend, store, grader, max_new_tokens=max_new_tokens,
                                   batch_size=batch_size, progress=progress, label=f"chain link {link + 1}")
        rows = {c: [store.rows[t.key] for t in static if t.condition == c] for c in conditions if c != "chain"}
        if chained:
            rows["chain"], links = _chain_rows(store.rows, name, chained, n)
    result = _result(name, rows, protocol)
    if chained:
        result["links"] = links
    Path(out, "analysis.json").write_text(json.dumps(result, indent=2) + "\n")
    analysis_report(result, out, title=f"Fine-grained analysis of {model} on {name} (protocol {protocol.name})")
    return result | {"_run": {"generated": generated, "skipped": skipped}}


def _chain_rows(saved: dict, name: str, chained: Sequence[Problem], n: int) -> tuple[list[dict], dict]:
    """One row per sampled chain (right only if every link is) and, per link, how many chains reached it."""
    rows, links = [], defaultdict(lambda: {"reached": 0, "correct": 0})
    for p in chained:
        for j in range(n):
            ok = True
            for i in range(len(p.subproblems)):
                r = saved.get((name, "chain", p.id, i + 1, j))
                if r is None:
                    ok = False
                    break
                links[i + 1]["reached"] += 1
                links[i + 1]["correct"] += bool(r["correct"])
                ok = ok and bool(r["correct"])
            rows.append({"problem_id": p.id, "sample": j, "correct": ok, "extracted": None,
                         "difficulty": p.difficulty, "subject": (p.meta or {}).get("subject")})
    return rows, {str(i): v for i, v in sorted(links.items())}


def _result(name: str, rows: dict[str, list[dict]], protocol: Protocol) -> dict:
    sampling = protocol.sampling(name)
    conditions = {c: summarize_rows(r, sampling, protocol, majority=c != "chain") for c, r in rows.items() if r}
    deltas = {c: _deltas(r, rows["plain"], protocol) for c, r in rows.items() if c != "plain" and r and "plain" in rows}
    return {"data": name, "protocol": protocol.name, "conditions": conditions, "deltas": deltas}
