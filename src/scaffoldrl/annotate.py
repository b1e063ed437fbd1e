"""Annotating records with a language model: SEELE's short step solutions, SPARKLE's plan / knowledge / chain.

Two tasks, each one request per record to any generation backend (in practice
an OpenAI-compatible server with a strong model):

* ``steps`` (SEELE): the reference solution rewritten as at most
  ``max_steps`` (5) numbered steps whose last one states the answer in
  ``\\boxed{}``. SEELE rewrote DeepMath's solutions this way with a strong
  model; the rewritten steps become the record's ``steps``, the units its
  hints are cut from.
* ``sparkle`` (SPARKLE): a plan (a skeleton that states no results), the
  knowledge the solution uses, and a chain of subproblems, each with its
  answer, the last one's being the problem's. They fill ``plan``,
  ``knowledge`` and ``subproblems`` for the fine-grained analysis.

SPARKLE released its annotated set but neither its prompts nor its scripts,
and SEELE did not publish its rewriting prompt: the prompts here are our own.
They ship as text files (:data:`PROMPTS`) with the fields ``{problem}``,
``{solution}``, ``{answer}`` and ``{max_steps}``; pass your own file to
replace one.

Every output is parsed and checked. Steps: numbered 1..n without gaps,
n ≤ ``max_steps``, the last one's ``\\boxed{}`` equal to the record's
answer by the shared grader (:func:`scaffoldrl.verify.get_grader`).
Chains: a plan, knowledge, every question with a non-empty answer, the last
answer equal to the record's. A failed output is retried (``retries`` times,
each with another seed), then counted and written to ``failures.jsonl`` with
the reason of every attempt. The run folder resumes: ``annotations.jsonl``
holds every finished (task, record), and a rerun asks only for the others.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from .evaluate import SampleStore
from .extract import last_boxed
from .generation import Backend, SamplingConfig, sample_seed
from .methods import require_steps
from .progress import progress_bar
from .records import Problem, Subproblem, write_records
from .runs import check_settings

PROMPT_DIR = Path(str(resources.files("scaffoldrl") / "configs" / "annotate"))
TASKS = ("steps", "sparkle")
PROMPTS = {task: PROMPT_DIR / f"{task}.txt" for task in TASKS}
"""The prompt file shipped for each task."""

NO_SOLUTION = "(none given: solve the problem)"
"""What ``{solution}`` becomes for a record without reference steps (the ``sparkle`` task only)."""


class AnnotationError(ValueError):
    """An output that does not parse or does not check; ``kind`` is a short reason that failures are counted by."""

    def __init__(self, kind: str, detail: str = ""):
        self.kind = kind
        super().__init__(f"{kind}: {detail}" if detail else kind)


def load_prompt(task: str, path: str | Path | None = None) -> str:
    """The prompt template of ``task``: the file at ``path``, else the one shipped with the package."""
    if task not in TASKS:
        raise ValueError(f"unknown annotation task {task!r}; known: {', '.join(TASKS)}")
    text = Path(path or PROMPTS[task]).read_text(encoding="utf-8")
    if "{problem}" not in text:
        raise ValueError(f"{path or PROMPTS[task]}: a prompt needs a {{problem}} field")
    return text


def render_prompt(template: str, problem: Problem, max_steps: int = 5) -> str:
    """Fill ``{problem}``, ``{solution}``, ``{answer}`` and ``{max_steps}`` (plain replacement: LaTeX braces stay)."""
    values = {"problem": problem.problem, "solution": problem.solution or NO_SOLUTION, "answer": problem.answer,
              "max_steps": str(max_steps)}
    return re.sub(r"\{(problem|solution|answer|max_steps)\}", lambda m: values[m.group(1)], template)


# ------------------------------------------------------------------------------ parsing

_STEP = re.compile(r"(?im)^[ \t>*_#]*step[ \t]*(\d+)[ \t*_]*[:.)][ \t*_]*")
_NUMBERED = re.compile(r"(?m)^[ \t*_]*(\d+)[ \t]*[.)][ \t*_]+")
_SECTION = re.compile(r"(?im)^[ \t#*_]*(plan(?:ning)?|knowledge|sub-?problems)[ \t*_]*(?::[ \t*_]*|$)")
_QA = re.compile(r"(?im)^[ \t>*_-]*(Q|A)[ \t]*(\d+)[ \t*_]*[:.)][ \t*_]*")


def _numbered(text: str, marker: re.Pattern) -> list[tuple[int, str]]:
    found = list(marker.finditer(text))
    return [(int(m.group(marker.groups)), text[m.end():found[i + 1].start() if i + 1 < len(found) else len(text)].strip())
            for i, m in enumerate(found)]


def parse_steps(text: str, max_steps: int = 5) -> list[str]:
    """The numbered steps of a rewritten solution (``Step 1:`` lines, else ``1.`` lines), each with its label.

    Raises :class:`AnnotationError` when there are none, they are not
    numbered 1..n, there are more than ``max_steps``, or one is empty. Text
    before the first step is dropped.
    """
    marker = _STEP if _STEP.search(text) else _NUMBERED
    found = list(marker.finditer(text))
    if not found:
        raise AnnotationError("no numbered steps", repr(text[:80]))
    numbers = [int(m.group(1)) for m in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise AnnotationError("steps not numbered 1..n", f"got {numbers}")
    if len(numbers) > max_steps:
        raise AnnotationError(f"more than {max_steps} steps", f"got {len(numbers)}")
    steps = [text[m.start():found[i + 1].start() if i + 1 < len(found) else len(text)].strip()
             for i, m in enumerate(found)]
    if any(not body for _, body in _numbered(text, marker)):
        raise AnnotationError("empty step")
    return steps


def _answer_of(text: str) -> str:
    """A subproblem answer's value: its last box, else the text without math delimiters."""
    boxed = last_boxed(text)
    value = boxed if boxed is not None else text
    return value.strip().strip("$").strip().rstrip(".").strip()


def parse_sparkle(text: str) -> dict:
    """``{"plan", "knowledge", "subproblems": [Subproblem]}`` from PLAN: / KNOWLEDGE: / SUBPROBLEMS: sections.

    Raises :class:`AnnotationError` when a section is missing or empty, the
    questions and answers do not alternate Q1, A1, Q2, A2, ..., or an answer
    is empty.
    """
    found = list(_SECTION.finditer(text))
    sections: dict[str, str] = {}
    for i, m in enumerate(found):
        name = m.group(1).lower().replace("-", "")
        name = "plan" if name.startswith("plan") else name
        body = text[m.end():found[i + 1].start() if i + 1 < len(found) else len(text)].strip()
        sections.setdefault(name, body)
    for name in ("plan", "knowledge", "subproblems"):
        if not sections.get(name):
            raise AnnotationError(f"no {name.upper()} section" if name not in sections else f"empty {name.upper()}")
    items = _numbered(sections["subproblems"], _QA)
    labels = [m.group(1).upper() + m.group(2) for m in _QA.finditer(sections["subproblems"])]
    if not items:
        raise AnnotationError("no Q1:/A1: lines in SUBPROBLEMS")
    want = [f"{kind}{i}" for i in range(1, (len(labels) + 1) // 2 + 1) for kind in "QA"]
    if labels == want[:-1]:
        raise AnnotationError("subproblem without an answer", f"{labels[-1]} has no A line")
    if labels != want:
        raise AnnotationError("subproblems not Q1, A1, Q2, A2, ...", f"got {labels}")
    subproblems = []
    for (_, question), (_, answer) in zip(items[::2], items[1::2]):
        value = _answer_of(answer)
        if not question:
            raise AnnotationError("empty subproblem question", f"Q{len(subproblems) + 1}")
        if not value:
            raise AnnotationError("subproblem without an answer", f"A{len(subproblems) + 1}")
        subproblems.append(Subproblem(question, value))
    return {"plan": sections["plan"], "knowledge": sections["knowledge"], "subproblems": subproblems}


# ------------------------------------------------------------------------------ checking


def _same_answer(grader, text: str, gold: str) -> bool:
    return bool(grader.grade(text, gold).correct)


def check_output(task: str, text: str, problem: Problem, grader, max_steps: int = 5) -> dict:
    """Parse one output of ``task`` and check it against the record; the fields it sets on the record.

    Raises :class:`AnnotationError` with the reason when it fails.
    """
    if task == "steps":
        steps = parse_steps(text, max_steps)
        boxed = last_boxed(steps[-1])
        if boxed is None:
            raise AnnotationError("last step has no \\boxed{} answer")
        if not _same_answer(grader, f"\\boxed{{{boxed}}}", problem.answer):
            raise AnnotationError("last step's answer is not the record's", f"{boxed!r} vs {problem.answer!r}")
        return {"steps": steps}
    if task == "sparkle":
        parsed = parse_sparkle(text)
        last = parsed["subproblems"][-1].answer
        if not _same_answer(grader, f"\\boxed{{{last}}}", problem.answer):
            raise AnnotationError("last subproblem's answer is not the record's", f"{last!r} vs {problem.answer!r}")
        return parsed
    raise ValueError(f"unknown annotation task {task!r}; known: {', '.join(TASKS)}")


def apply(problem: Problem, fields: Mapping) -> Problem:
    """A copy of ``problem`` with an annotation's fields set (subproblems as :class:`Subproblem`)."""
    from dataclasses import replace

    values = dict(fields)
    if "subproblems" in values:
        values["subproblems"] = [s if isinstance(s, Subproblem) else Subproblem(s["question"], s["answer"])
                                 for s in values["subproblems"]]
    return replace(problem, **values)


# ------------------------------------------------------------------------------ the run


@dataclass
class Annotated:
    """What :func:`annotate` did: the records written, and per task how many succeeded and failed."""

    records: list[Problem]
    path: Path
    failures_path: Path
    counts: dict[str, dict[str, int]]
    """Per task: ``ok``, ``failed`` (after every retry), ``requests`` made by this run, ``reused`` from earlier runs."""
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per task: why attempts failed (every attempt counted, including those a retry fixed)."""
    dropped: int = 0
    """Records left out of the output because a task failed on them (kept, partly annotated, with ``keep_failed``)."""

    def to_dict(self) -> dict:
        """The counts as plain data (``summary.json``)."""
        return {"records": str(self.path), "written": len(self.records), "dropped": self.dropped,
                "failures": str(self.failures_path), "counts": self.counts, "reasons": self.reasons}


def _key(row: Mapping) -> tuple:
    return row.get("task"), row.get("id")


def _generate(backend: Backend, prompts: list[str], config: SamplingConfig, seeds: list[int],
              advance: Callable[[int], None]) -> list[str | Exception]:
    """One output per prompt; a failed request becomes its exception (tried alone, so the others still count)."""
    try:
        return list(backend.generate(prompts, config, seeds, progress=advance))
    except Exception:  # noqa: BLE001 - a server error is one failed attempt, not the end of the run
        out: list[str | Exception] = []
        for prompt, seed in zip(prompts, seeds):
            try:
                out.append(backend.generate([prompt], config, [seed])[0])
            except Exception as e:  # noqa: BLE001
                out.append(e)
        return out


def annotate(backend: Backend, problems: Sequence[Problem], out: str | Path, tasks: Iterable[str] = ("steps",), *,
             model: str = "", prompts: Mapping[str, str | Path] | None = None, retries: int = 2,
             max_steps: int = 5, temperature: float = 0.6, top_p: float = 1.0, max_new_tokens: int = 2048,
             seed: int = 0, batch_size: int = 32, records: str | Path | None = None, keep_failed: bool = False,
             retry_failed: bool = False, where: str = "the records", grader=None,
             progress: bool = True) -> Annotated:
    """Annotate ``problems`` with ``backend`` for each of ``tasks``; resumes from ``out/annotations.jsonl``.

    ``prompts`` maps a task to a prompt file replacing the shipped one. Each
    failed output is retried up to ``retries`` times with a new seed (a
    server at temperature 0 may answer the same each time). The annotated
    records go to ``records`` (default ``out/records.jsonl``): those every
    task succeeded on, plus, with ``keep_failed``, the others with the
    annotations that did succeed.
    ``failures.jsonl`` lists every failed (task, record) with the reason of
    each attempt and the last output. ``retry_failed`` asks again for the
    records an earlier run gave up on. The ``steps`` task rewrites reference
    steps, so records without any raise
    :class:`~scaffoldrl.methods.MissingReference` naming ``where``.
    """
    from .verify import get_grader

    tasks = list(dict.fromkeys(tasks))
    for task in tasks:
        if task not in TASKS:
            raise ValueError(f"unknown annotation task {task!r}; known: {', '.join(TASKS)}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if "steps" in tasks:
        require_steps(problems, "annotate --task steps", where)
    templates = {task: load_prompt(task, (prompts or {}).get(task)) for task in tasks}
    out = Path(out)
    check_settings(out, "annotate.json", {"model": model, "prompts": templates, "max_steps": max_steps,
                                          "temperature": temperature, "top_p": top_p,
                                          "max_new_tokens": max_new_tokens, "seed": seed})
    grader = grader or get_grader()
    config = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                            batch_size=batch_size)
    requests = Counter()
    reasons: dict[str, Counter] = {task: Counter() for task in tasks}
    with SampleStore(out / "annotations.jsonl", key=_key) as store:
        done = {task: sum((task, p.id) in store and (not retry_failed or store.rows[(task, p.id)]["status"] == "ok")
                          for p in problems) for task in tasks}
        pending = [(task, p) for task in tasks for p in problems
                   if (task, p.id) not in store or (retry_failed and store.rows[(task, p.id)]["status"] != "ok")]
        with progress_bar(progress, len(pending), "annotating") as advance:
            for start in range(0, len(pending), batch_size):
                chunk = pending[start:start + batch_size]
                tries: dict[int, list[str]] = {i: [] for i in range(len(chunk))}
                last: dict[int, str] = {}
                todo = list(range(len(chunk)))
                for attempt in range(retries + 1):
                    if not todo:
                        break
                    prompts_ = [backend.render(render_prompt(templates[chunk[i][0]], chunk[i][1], max_steps))
                                for i in todo]
                    seeds = [sample_seed(seed, chunk[i][0], chunk[i][1].id, attempt) for i in todo]
                    texts = _generate(backend, prompts_, config, seeds, advance if attempt == 0 else lambda n: None)
                    finished, failed = [], []
                    for i, text in zip(todo, texts):
                        task, problem = chunk[i]
                        requests[task] += 1
                        try:
                            if isinstance(text, Exception):
                                raise AnnotationError("request failed", f"{type(text).__name__}: {text}")
                            last[i] = text
                            fields = check_output(task, text, problem, grader, max_steps)
                        except AnnotationError as e:
                            reasons[task][e.kind] += 1
                            tries[i].append(str(e))
                            failed.append(i)
                            continue
                        finished.append({"task": task, "id": problem.id, "status": "ok", "attempts": attempt + 1,
                                         "reasons": tries[i], "output": text,
                                         "fields": json.loads(json.dumps(_plain(fields)))})
                    store.append(finished)
                    todo = failed
                store.append([{"task": chunk[i][0], "id": chunk[i][1].id, "status": "failed",
                               "attempts": retries + 1, "reasons": tries[i], "output": last.get(i)} for i in todo])
        rows = dict(store.rows)
    written, dropped = [], 0
    for p in problems:
        ok = [task for task in tasks if rows.get((task, p.id), {}).get("status") == "ok"]
        if len(ok) < len(tasks) and not keep_failed:
            dropped += 1
            continue
        annotated = p
        for task in ok:
            annotated = apply(annotated, rows[(task, p.id)]["fields"])
        written.append(apply(annotated, {"meta": p.meta | {"annotated": {t: model for t in ok}}}) if ok else p)
    failures = [rows[(task, p.id)] for task in tasks for p in problems
                if (task, p.id) in rows and rows[(task, p.id)]["status"] != "ok"]
    failures_path = out / "failures.jsonl"
    failures_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in failures), encoding="utf-8")
    counts = {task: {"ok": sum(rows.get((task, p.id), {}).get("status") == "ok" for p in problems),
                     "failed": sum(rows.get((task, p.id), {}).get("status") == "failed" for p in problems),
                     "requests": requests[task], "reused": done[task]} for task in tasks}
    result = Annotated(written, write_records(written, records or out / "records.jsonl"), failures_path, counts,
                       {task: dict(c.most_common()) for task, c in reasons.items()}, dropped)
    (out / "summary.json").write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    return result


def _plain(fields: Mapping) -> dict:
    """An annotation's fields as JSON data (subproblems as mappings)."""
    return {k: [{"question": s.question, "answer": s.answer} for s in v] if k == "subproblems" else v
            for k, v in fields.items()}
