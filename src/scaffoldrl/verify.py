"""One math grader for training and evaluation: math-verify behind a hard deadline.

math-verify is the reference (gold first). Its own timeouts use
``signal.alarm``, which raises outside the main thread, and C-level sympy work
can hang past them. So it runs in worker processes that the parent kills and
replaces when an item overruns its deadline: a hung item becomes a counted
``timeout`` verdict, never a hung step. Two things keep it fast on RL batches,
where a group repeats the same few answers: a fast path for the cases whose
math-verify verdict is certain (the same string, two plain numbers) and a
cache keyed by (gold, extracted answer).

What is graded is the answer :func:`scaffoldrl.extract.find_answer` reads in a
completion (its docstring gives the order of precedence); with the default
extraction a completion with no marked answer goes to math-verify whole, and
math-verify's own extraction finds its answer, in the worker and under the
same deadline. ``extraction="strict"`` grades answer tags and boxes only.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
import weakref
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Sequence


from .extract import EXTRACTIONS, Answer, find_answer, gold_target
from .progress import progress_bar

logger = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("_grade_worker.py")
STARTUP_TIMEOUT = 120.0  # seconds for a worker to import math-verify


@dataclass(frozen=True)
class Verdict:
    """The grade of one completion. ``correct`` is None when it could not be graded."""

    correct: bool | None
    extracted: str | None
    status: str  # "ok" | "no_answer" | "timeout" | "error"
    rule: str | None  # extraction rule that fired (``math_verify``: math-verify's own extraction)


Target = tuple  # ("p", part, ...): answers read as \boxed{part}; ("t", text): math-verify extracts from text


def target_key(answer: Answer) -> Target:
    """What a worker is asked to read for an answer (and what the cache is keyed by)."""
    return ("p", *answer.parts) if answer.parts else ("t", answer.text)


# ---------------------------------------------------------------- fast path

_PLAIN_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")


def _plain_number(s: str) -> Decimal | None:
    return Decimal(s.replace(",", "")) if _PLAIN_NUMBER.fullmatch(s) else None


_FRACTION = re.compile(r"(-?)\\[dt]?frac\{(-?\d+)\}\{(\d+)\}")


def _fraction(s: str) -> Fraction | None:
    """The value of ``\\frac{a}{b}`` (``\\dfrac``, ``\\tfrac``, signs before it or a), integers a and b > 0."""
    m = _FRACTION.fullmatch(s)
    if m is None or int(m.group(3)) == 0:
        return None
    return Fraction(int(m.group(2)), int(m.group(3))) * (-1 if m.group(1) else 1)


def fast_verdict(gold: str, pred: str) -> bool | None:
    """math-verify's verdict where it is certain without parsing, else None.

    Equal strings are correct; two plain numbers are correct when equal, wrong
    when both are integers or differ by more than 1e-4 relative (math-verify's
    float rounding only merges closer values). A fraction of two integers
    (``\\frac{3}{4}``) against a fraction or an integer is correct when the two are
    equal and wrong otherwise (math-verify reads both as exact rationals); against a
    decimal it is only ever found wrong, by the same 1e-4. No other LaTeX normalisation:
    math-verify's verdict can change with as little as a doubled space.
    """
    g, p = gold.strip(), pred.strip()
    if g and g == p:
        return True
    a, b = _plain_number(g), _plain_number(p)
    if a is not None and b is not None:
        if a == b:
            return True
        if "." not in g + p or abs(a - b) > Decimal("1e-4") * max(1, abs(a), abs(b)):
            return False
        return None
    fa, fb = _fraction(g), _fraction(p)
    if (fa is None and a is None) or (fb is None and b is None) or (fa is None and fb is None):
        return None
    x = fa if fa is not None else Fraction(a)
    y = fb if fb is not None else Fraction(b)
    if "." not in (g if fa is None else "") + (p if fb is None else ""):
        return x == y
    return False if abs(x - y) > Fraction(1, 10_000) * max(1, abs(x), abs(y)) else None


# ---------------------------------------------------------------- worker processes


class WorkerDied(RuntimeError):
    """A grading worker process exited; the item it held is counted as an error."""


class _Worker:
    """One math-verify process, spoken to in JSON lines; killed when an item overruns."""

    def __init__(self, memory_mb: int, warm_up: bool = False):
        self.proc = subprocess.Popen(
            [sys.executable, "-P", str(WORKER_SCRIPT), str(memory_mb), "warm" if warm_up else "cold"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self._ready = False

    def _read_line(self, timeout: float) -> bytes | None:
        """One reply line, or None once ``timeout`` seconds have passed."""
        fd, chunks, deadline = self.proc.stdout.fileno(), [], time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerDied(f"math-verify worker exited with code {self.proc.wait()}")
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                return b"".join(chunks)

    def _started(self) -> None:
        if not self._ready:
            if self._read_line(STARTUP_TIMEOUT) != b"ready\n":
                raise RuntimeError("math-verify worker did not start; is math-verify installed?")
            self._ready = True

    def ask(self, gold: Target, pred: Target, timeout: float) -> dict | None:
        """The worker's reply for one pair, or None when it missed the deadline."""
        self._started()
        self.proc.stdin.write(json.dumps({"gold": list(gold), "pred": list(pred)}).encode() + b"\n")
        line = self._read_line(timeout)
        return None if line is None else json.loads(line)

    def finish_warm_up(self, timeout: float) -> bool:
        """Wait until the worker has finished warming up; False if it did not within ``timeout``."""
        self._started()
        self.proc.stdin.write(b'{"warm": true}\n')
        return self._read_line(timeout) is not None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


class _Pool:
    """Workers lent to one caller at a time; a worker that overran or died is replaced."""

    def __init__(self, size: int, memory_mb: int, warm_up: bool = False):
        self.size, self.memory_mb, self.warm_up = size, memory_mb, warm_up
        self._idle: queue.LifoQueue[_Worker | None] = queue.LifoQueue()
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        for _ in range(size):
            self._idle.put(None)  # started on first use

    def _spawn(self) -> _Worker:
        worker = _Worker(self.memory_mb, self.warm_up)
        with self._lock:
            self._all.add(worker)
        return worker

    def _retire(self, worker: _Worker) -> _Worker:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
        return self._spawn()

    def _checkout(self) -> _Worker:
        worker = self._idle.get()
        if worker is None:  # never started
            return self._spawn()
        return worker if worker.proc.poll() is None else self._retire(worker)  # died while idle

    def ask(self, pairs: Sequence[tuple[Target, Target]], timeout: float) -> list[tuple]:
        """(status, correct, extracted) for each (gold, pred), status "ok", "timeout" or "error".

        All on one worker, so that a gold shared by the pairs is parsed once.
        """
        worker, results = self._checkout(), []
        try:
            for gold, pred in pairs:
                result, healthy = _ask_one(worker, gold, pred, timeout)
                results.append(result)
                if not healthy:
                    worker = self._retire(worker)
        except BaseException:
            worker = self._retire(worker)
            raise
        finally:
            self._idle.put(worker)
        return results

    def finish_warm_up(self, timeout: float) -> None:
        """Start every worker and wait until each has warmed up (a worker that does not is replaced)."""
        workers = [self._checkout() for _ in range(self.size)]
        try:
            with ThreadPoolExecutor(self.size) as pool:
                done = list(pool.map(lambda w: w.finish_warm_up(timeout), workers))
            workers = [w if ok else self._retire(w) for w, ok in zip(workers, done)]
        finally:
            for worker in workers:
                self._idle.put(worker)

    def close(self) -> None:
        """Stop every worker; later calls start fresh ones. Call it when no grading is in flight."""
        with self._lock:
            workers, self._all = list(self._all), set()
        for worker in workers:
            worker.kill()
        while not self._idle.empty():
            self._idle.get()
        for _ in range(self.size):
            self._idle.put(None)


def _ask_one(worker: _Worker, gold: Target, pred: Target, timeout: float) -> tuple[tuple, bool]:
    """((status, correct, extracted), whether the worker can be used again)."""
    try:
        reply = worker.ask(gold, pred, timeout)
    except (WorkerDied, BrokenPipeError) as e:
        logger.warning("grader worker died: gold=%r pred=%r: %s", _short(gold), _short(pred), e)
        return ("error", None, None), False
    if reply is None:
        logger.warning("grading timed out after %.1fs: gold=%r pred=%r", timeout, _short(gold), _short(pred))
        return ("timeout", None, None), False
    if "error" in reply:
        logger.warning("grading failed: gold=%r pred=%r: %s", _short(gold), _short(pred), reply["error"])
        return ("error", None, None), True
    return ("ok", reply["correct"], reply.get("extracted")), True


def _short(target: Target) -> str:
    return "; ".join(target[1:])[:100]


# ---------------------------------------------------------------- the grader


def gold_answer(gold) -> str:
    """The gold answer as text (:func:`scaffoldrl.extract.gold_target`): a gold that is a whole
    solution gives its boxes; one with nothing marked is returned whole."""
    target = gold_target(gold)
    return target.shown if target.parts else str(gold)


def completion_text(completion) -> str:
    """A completion as text: plain, or the last message of a conversational one."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return completion.get("content") or ""
    return completion_text(completion[-1]) if completion else ""


class Grader:
    """Extracts answers and grades them against gold answers; usable from any thread.

    ``timeout`` is the hard per-item deadline in seconds; an item past it is
    killed and graded wrong (None with ``timeout_as_none``). ``memory_mb``
    caps each worker's address space. ``extraction`` (:data:`scaffoldrl.extract.EXTRACTIONS`)
    is ``default`` (every rule, then math-verify's own extraction) or ``strict`` (answer
    tags and boxes only); :meth:`grade_batch` may override it per call. ``stats``
    counts verdict statuses and where verdicts came from (cache, fast path, math-verify).

    ``warm_up``: each worker warms latex2sympy's parser while it has nothing to grade (see
    ``_grade_worker.py``; a request waits at most for the one warm-up parse in hand, and verdicts
    are the same): about 20-30 s of one core per worker, after which a new LaTeX answer parses in
    about half the time. Worth it where the grader idles between batches (RL steps); :meth:`warm_up_now`
    waits for it.
    """

    def __init__(self, workers: int = 1, timeout: float = 5.0, timeout_as_none: bool = False,
                 fallback_last_number: bool = False, cache_size: int = 100_000, memory_mb: int = 4096,
                 extraction: str = "default", warm_up: bool = False):
        if extraction not in EXTRACTIONS:
            raise ValueError(f"unknown extraction {extraction!r}; known: {', '.join(EXTRACTIONS)}")
        self.extraction = extraction
        self.workers, self.timeout, self.timeout_as_none = workers, timeout, timeout_as_none
        self.fallback_last_number, self.cache_size = fallback_last_number, cache_size
        self.stats: Counter[str] = Counter()
        self._pool = _Pool(workers, memory_mb, warm_up)
        self._cache: OrderedDict[tuple[Target, Target], tuple] = OrderedDict()
        self._lock = threading.Lock()
        weakref.finalize(self, self._pool.close)

    def grade(self, completion: str, gold: str, extraction: str | None = None) -> Verdict:
        """Grade one completion against its gold answer."""
        return self.grade_batch([(completion, gold)], extraction=extraction)[0]

    def grade_batch(self, pairs: Sequence[tuple[str, str]], progress: bool = False,
                    extraction: str | None = None) -> list[Verdict]:
        """Verdicts for (completion, gold) pairs, in order; deterministic up to timeouts."""
        extraction = extraction or self.extraction
        answers = [find_answer(completion_text(c), extraction, self.fallback_last_number) for c, _ in pairs]
        golds: dict[str, Target] = {}
        for _, g in pairs:
            if (g := str(g)) not in golds:
                golds[g] = target_key(gold_target(g))
        keys = [(golds[str(g)], target_key(a)) if a is not None else None for (_, g), a in zip(pairs, answers)]
        with progress_bar(progress, len(pairs), "grading") as advance:
            advance(keys.count(None))
            results = self._resolve(keys, advance)
        verdicts = [self._verdict(a, results.get(k)) for a, k in zip(answers, keys)]
        with self._lock:
            self.stats.update(v.status for v in verdicts)
        return verdicts

    def _verdict(self, answer: Answer | None, result) -> Verdict:
        if answer is None:
            return Verdict(False, None, "no_answer", None)
        status, correct, extracted = result
        shown = answer.shown if answer.parts else extracted
        if status == "ok" and shown is None:  # math-verify found nothing either
            return Verdict(False, None, "no_answer", None)
        if status == "timeout" and not self.timeout_as_none:
            correct = False
        return Verdict(correct, shown, status, answer.rule)

    def _resolve(self, keys, advance) -> dict:
        """(status, correct, extracted) for every distinct key: from the cache, the fast path, or math-verify.

        ``stats`` counts items: a key repeated within the batch is a cache hit after its first use.
        """
        counts = Counter(k for k in keys if k is not None)
        with self._lock:
            found = {k: self._cache[k] for k in counts if k in self._cache}
        self._count("cache_hits", sum(counts[k] for k in found), advance)
        fresh = {}
        for key in counts.keys() - found.keys():
            if (fast := _fast(*key)) is not None:
                fresh[key] = ("ok", fast, None)
                self._count("fast_path", 1, advance, repeats=counts[key] - 1)
        todo = sorted(counts.keys() - found.keys() - fresh.keys())  # a fixed order: reproducible batches
        chunks = _same_gold_runs(todo)
        with ThreadPoolExecutor(self.workers) as pool:
            for chunk, results in zip(chunks, pool.map(self._ask, chunks)):
                for key, result in zip(chunk, results):
                    fresh[key] = result
                    self._count("math_verify", 1, advance, repeats=counts[key] - 1)
        self._store({k: v for k, v in fresh.items() if v[0] != "error"})  # an error may be the machine's
        return found | fresh

    def _ask(self, keys: list[tuple[Target, Target]]) -> list[tuple]:
        return self._pool.ask(keys, self.timeout)

    def _store(self, results: dict) -> None:
        """Remember verdicts (timeouts too: a repeat would only time out again)."""
        with self._lock:
            self._cache.update(results)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def _count(self, source: str, items: int, advance, repeats: int = 0) -> None:
        with self._lock:
            self.stats[source] += items
            self.stats["cache_hits"] += repeats
        advance(items + repeats)

    def warm_up_now(self, timeout: float = 600.0) -> None:
        """Start the workers and wait until they have warmed up (at once without ``warm_up``)."""
        self._pool.finish_warm_up(timeout)

    def close(self) -> None:
        """Stop the worker processes (restarted if the grader is used again)."""
        self._pool.close()

    def __enter__(self) -> Grader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _fast(gold: Target, pred: Target) -> bool | None:
    """:func:`fast_verdict` for two single answers."""
    if gold[0] == pred[0] == "p" and len(gold) == len(pred) == 2:
        return fast_verdict(gold[1], pred[1])
    return None


def _same_gold_runs(keys: list[tuple[Target, Target]], size: int = 8) -> list[list[tuple[Target, Target]]]:
    """Sorted keys cut into runs of at most ``size`` sharing a gold: one worker parses that gold once."""
    runs: list[list[tuple[Target, Target]]] = []
    for key in keys:
        if runs and runs[-1][0][0] == key[0] and len(runs[-1]) < size:
            runs[-1].append(key)
        else:
            runs.append([key])
    return runs


_shared: Grader | None = None
_shared_lock = threading.Lock()


def get_grader() -> Grader:
    """The process-wide grader the reward functions use, created on first use.

    ``SCAFFOLDRL_GRADER_WORKERS`` sets its worker count (default 1) and
    ``SCAFFOLDRL_GRADER_EXTRACTION`` its extraction (``default`` or ``strict``) and
    ``SCAFFOLDRL_GRADER_WARM_UP=1`` switches on its idle-time warm-up;
    :func:`set_grader` installs another one.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = shared_settings_grader()
        return _shared


def shared_settings_grader(**overrides) -> Grader:
    """A grader with the shared grader's settings from the environment (see :func:`get_grader`), and ``overrides``."""
    settings = {"workers": int(os.environ.get("SCAFFOLDRL_GRADER_WORKERS", "1")),
                "extraction": os.environ.get("SCAFFOLDRL_GRADER_EXTRACTION") or "default",
                "warm_up": os.environ.get("SCAFFOLDRL_GRADER_WARM_UP", "0") not in ("", "0")}
    return Grader(**(settings | {k: v for k, v in overrides.items() if v is not None}))


def set_grader(grader: Grader) -> None:
    """Make ``grader`` the shared one (the previous one is closed)."""
    global _shared
    with _shared_lock:
        previous, _shared = _shared, grader
    if previous is not None and previous is not grader:
        previous.close()


# ---------------------------------------------------------------- files


def summarise(verdicts: Sequence[Verdict]) -> dict:
    """Accuracy over all rows (ungraded rows count as wrong) and the count of each status."""
    statuses = Counter(v.status for v in verdicts)
    n = len(verdicts)
    return {"rows": n, "correct": sum(v.correct is True for v in verdicts),
            "accuracy": sum(v.correct is True for v in verdicts) / n if n else 0.0,
            **{s: statuses[s] for s in ("ok", "no_answer", "timeout", "error")}}


def grade_file(input: str | Path, output: str | Path, completion_key: str = "completion",
               answer_key: str = "answer", grader: Grader | None = None, progress: bool = True) -> dict:
    """Grade a JSONL file of completions; each output row is its input row plus
    ``correct``, ``extracted``, ``status`` and ``rule``. Returns :func:`summarise`'s summary."""
    rows = [json.loads(line) for line in Path(input).read_text().splitlines() if line.strip()]
    for i, row in enumerate(rows, 1):
        missing = [k for k in (completion_key, answer_key) if k not in row]
        if missing:
            raise ValueError(f"{input}: row {i} has no column {missing[0]!r}")
    pairs = [(completion_text(row[completion_key]), str(row[answer_key])) for row in rows]
    verdicts = (grader or get_grader()).grade_batch(pairs, progress=progress)
    with open(output, "w") as f:
        for row, verdict in zip(rows, verdicts):
            f.write(json.dumps(row | asdict(verdict)) + "\n")  # ASCII: completions may hold lone surrogates
    return summarise(verdicts)
