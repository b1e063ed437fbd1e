"""Where a grading worker's time goes on the speed bench's batch, and what each of its speed-ups saves.

The requests our grader sends its workers for ``bench/verify_speed.py``'s batch (those the
cache and the fast path leave: distinct answers, and whole texts with no marked answer) are
recorded once, then replayed in a fresh process per configuration: the worker's grading
function with none of its speed-ups, then adding them one at a time. Each replay warms up as a
worker does (``warm_up_texts``) and reports, per request kind, the seconds spent in LaTeX parses
that succeed, in those that fail, and in the rest (math-verify's comparison, its extraction
regexes), and how many replies differ from those with no speed-up.

Run: python bench/grader_profile.py [--mix mixed|reference] [--problems 500] [--gsm8k 125] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile

from verify_speed import WorkerClock, build_batch, ours

CONFIGS = [(), ("two_stage_parsing",), ("two_stage_parsing", "direct_numbers"),
           ("two_stage_parsing", "direct_numbers", "numeric_rejection")]

REPLAY = """
import json, logging, sys, time
from math_verify import parse, parser
from scaffoldrl import _grade_worker

requests, speed_ups = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
grade = _grade_worker.grading(speed_ups)
logging.getLogger("math_verify").setLevel(logging.CRITICAL)
for text in _grade_worker.warm_up_texts():
    try:
        parse(text, parsing_timeout=None)
    except Exception:
        pass
cached = parser.parse_latex_cached
parse_seconds = {"ok": 0.0, "failed": 0.0}

def timed_parse(latex):
    start, outcome = time.perf_counter(), "failed"
    try:
        result = cached(latex)
        outcome = "ok"
        return result
    finally:
        parse_seconds[outcome] += time.perf_counter() - start

parser.parse_latex_cached = timed_parse
report, replies = {}, []
for kind in ("p", "t"):
    parse_seconds.update(ok=0.0, failed=0.0)
    start = time.perf_counter()
    replies += [grade(gold, pred) for gold, pred in requests if pred[0] == kind]
    total = time.perf_counter() - start
    report[kind] = dict(parse_seconds, total=total, rest=total - sum(parse_seconds.values()),
                        requests=sum(pred[0] == kind for _, pred in requests))
print(json.dumps({"report": report, "replies": replies}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mix", choices=["mixed", "reference"], default="mixed")
    parser.add_argument("--problems", type=int, default=500)
    parser.add_argument("--gsm8k", type=int, default=125)
    parser.add_argument("--repeats", type=int, default=3, help="replays per configuration (medians reported)")
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    pairs, _ = build_batch(args.problems, args.gsm8k, args.mix)
    with WorkerClock() as clock:
        ours(pairs, 1)
    requests = clock.requests[1:]  # the first is the bench's start-up pair
    print(f"{args.mix} batch: {len(pairs)} completions, {len(requests)} worker requests")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(requests, f)
        f.flush()
        runs: dict[tuple, list[dict]] = {config: [] for config in CONFIGS}
        baseline = None
        for repeat in range(args.repeats):  # configurations interleaved, so drifts in load hit them alike
            for config in CONFIGS:
                run = subprocess.run([sys.executable, "-c", REPLAY, f.name, json.dumps(config)],
                                     capture_output=True, text=True, check=True)
                out = json.loads(run.stdout)
                baseline = baseline or out["replies"]
                runs[config].append(dict(out["report"], differing=sum(a != b for a, b in zip(baseline, out["replies"]))))
                print(f"    repeat {repeat + 1}, {' + '.join(config) or 'none'}: "
                      f"{sum(r['total'] for r in out['report'].values()):.2f}s", file=sys.stderr)
    print(f"medians of {args.repeats} replays (seconds in one process; load average at the end "
          f"{' '.join(open('/proc/loadavg').read().split()[:3]) if sys.platform == 'linux' else 'n/a'})")
    print("| speed-ups | kind | requests | parse ok (s) | parse failed (s) | rest (s) | total (s) | replies differing |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for config, reports in runs.items():
        for kind, name in (("p", "answers"), ("t", "whole texts")):
            cell = {key: statistics.median(r[kind][key] for r in reports) for key in ("ok", "failed", "rest", "total")}
            print(f"| {' + '.join(config) or 'none'} | {name} | {reports[0][kind]['requests']} | {cell['ok']:.2f} "
                  f"| {cell['failed']:.2f} | {cell['rest']:.2f} | {cell['total']:.2f} | {max(r['differing'] for r in reports)} |")


if __name__ == "__main__":
    main()
