"""Every benchmark reference solution must grade correct against its own answer, and wrong
against the answer of another problem (the next one with a different answer).

Run: python bench/verify_references.py [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import time

from scaffoldrl.sources import VENDOR, load_source
from scaffoldrl.verify import Grader

# benchmark -> (raw vendored file, solution column); GSM8K keeps its "#### N" line here.
BENCHMARKS = {"math500": "solution", "minerva_math": "solution", "aime24": "solution", "gsm8k": "answer"}


def reference_pairs(name: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(solution, own answer) and (solution, another problem's different answer) for one benchmark."""
    rows = [json.loads(line) for line in (VENDOR / f"benchmarks/{name}.jsonl").read_text().splitlines()]
    solutions = [row[BENCHMARKS[name]] for row in rows]
    answers = [p.answer for p in load_source(name)]
    own = list(zip(solutions, answers))
    other = []
    for i, solution in enumerate(solutions):
        j = next(k % len(answers) for k in range(i + 1, i + len(answers)) if answers[k % len(answers)] != answers[i])
        other.append((solution, answers[j]))
    return own, other


def check(grader: Grader) -> dict:
    """Per benchmark: counts of own-answer passes and other-answer rejections, with every exception."""
    report = {}
    for name in BENCHMARKS:
        own, other = reference_pairs(name)
        own_v, other_v = grader.grade_batch(own), grader.grade_batch(other)
        report[name] = {
            "problems": len(own),
            "own_correct": sum(v.correct is True for v in own_v),
            "other_wrong": sum(v.correct is False for v in other_v),
            "exceptions": [{"index": i, "kind": kind, "gold": pair[1], **vars(v)}
                           for kind, pairs, verdicts, want in (("own", own, own_v, True), ("other", other, other_v, False))
                           for i, (pair, v) in enumerate(zip(pairs, verdicts)) if v.correct is not want],
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    with Grader(workers=args.workers) as grader:
        report = check(grader)
        stats = dict(grader.stats)
    for name, r in report.items():
        print(f"{name:13s} own answer correct {r['own_correct']}/{r['problems']}, "
              f"other answer wrong {r['other_wrong']}/{r['problems']}")
        for e in r["exceptions"]:
            print(f"    exception: {e}")
    print(f"{time.perf_counter() - start:.1f}s; grader stats {stats}")


if __name__ == "__main__":
    main()
