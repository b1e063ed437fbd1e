"""Grading speed on an RL-shaped batch: math-verify in a loop, TRL's accuracy_reward, and ours.

The batch: for each MATH500 and GSM8K problem, a group of 8 completions built
from its reference solution in the formats models produce (boxed, SPARKLE's
<answer> block, "The answer is", \\dfrac spelling, a final-answer line, another
problem's answer, a truncated solution with no answer, and a repeat; GSM8K
groups end one completion with "#### N", MATH ones with Minerva's "Final Answer:" line).
Gold answers are given to every grader as ``\\boxed{gold}``.

Run: python bench/verify_speed.py [--problems 500] [--gsm8k 125]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter

from math_verify import parse, verify
from trl.rewards import accuracy_reward

from scaffoldrl.extract import last_boxed
from scaffoldrl.sources import load_source
from scaffoldrl.verify import Grader

GROUP = 8


def group(solution: str, answer: str, other: str, gsm8k: bool) -> list[str]:
    """Eight completions for one problem, as a GRPO group would hold them."""
    body = solution.replace(f"\\boxed{{{last_boxed(solution)}}}", last_boxed(solution) or "")
    boxed = f"{body}\n\nTherefore the final answer is $\\boxed{{{answer}}}$."
    final_line = (f"#### {answer}" if gsm8k else
                  f"Final Answer: The final answer is ${answer}$. I hope it is correct.")
    return [
        boxed,
        f"<think>\n{body}\n</think>\n<answer>\nThe answer is \\boxed{{{answer}}}.\n</answer>",
        f"{body}\nThe answer is ${answer}$.",
        boxed.replace("\\frac", "\\dfrac"),
        f"{body}\n{final_line}",
        f"{body}\n\nTherefore the final answer is $\\boxed{{{other}}}$.",
        body[: len(body) // 2],
        boxed,
    ]


def build_batch(n_math: int, n_gsm8k: int) -> list[tuple[str, str]]:
    problems = list(load_source("math500"))[:n_math] + list(load_source("gsm8k"))[:n_gsm8k]
    pairs = []
    for i, p in enumerate(problems):
        other = next(q.answer for q in problems[i + 1 :] + problems if q.answer != p.answer)
        pairs += [(c, p.answer) for c in group(p.solution, p.answer, other, p.source == "gsm8k")]
    return pairs


def plain_math_verify(pairs) -> list[bool]:
    return [verify(parse(f"\\boxed{{{gold}}}"), parse(completion)) for completion, gold in pairs]


def trl_accuracy(pairs) -> list[float | None]:
    completions = [[{"role": "assistant", "content": c}] for c, _ in pairs]
    return accuracy_reward(completions, [f"\\boxed{{{g}}}" for _, g in pairs])


def ours(pairs, workers: int, chunk: int = 256):
    """Graded in chunks of ``chunk`` items, as successive RL steps would call it; workers warmed first."""
    with Grader(workers=workers) as grader:
        grader.grade_batch([(f"\\boxed{{x+{i}}}", f"{i}+x") for i in range(workers)])  # start workers off the clock
        grader.stats.clear()
        start = time.perf_counter()
        verdicts = [v for i in range(0, len(pairs), chunk) for v in grader.grade_batch(pairs[i : i + chunk])]
        return verdicts, time.perf_counter() - start, dict(grader.stats)


def timed(fn, *args):
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500, help="MATH500 problems (8 completions each)")
    parser.add_argument("--gsm8k", type=int, default=125, help="GSM8K problems (8 completions each)")
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    pairs = build_batch(args.problems, args.gsm8k)
    print(f"batch: {len(pairs)} completions, mean {sum(len(c) for c, _ in pairs) / len(pairs):.0f} chars")

    reference, t_plain = timed(plain_math_verify, pairs)
    trl, t_trl = timed(trl_accuracy, pairs)
    print(f"(a) math-verify loop      {len(pairs) / t_plain:8.1f} items/s  ({t_plain:.1f}s)")
    print(f"(b) TRL accuracy_reward   {len(pairs) / t_trl:8.1f} items/s  ({t_trl:.1f}s)")
    for workers in (1, 2):
        verdicts, t, stats = ours(pairs, workers)
        print(f"(c) ours, {workers} worker(s)     {len(pairs) / t:8.1f} items/s  ({t:.1f}s)  "
              f"{t_plain / t:.1f}x (a); {stats}")
    differ = [(i, r, v) for i, (r, v) in enumerate(zip(reference, verdicts)) if bool(v.correct) != r]
    kinds = Counter(f"format {i % GROUP}, ours {v.correct} ({v.status}, {v.rule})" for i, _, v in differ)
    print(f"verdicts differing from (a): {len(differ)}  {dict(kinds)}")
    trl_differ = sum((t == 1.0) != bool(v.correct) for t, v in zip(trl, verdicts))
    print(f"verdicts differing from (b): {trl_differ} (None from TRL: {sum(t is None for t in trl)})")
    for i, r, v in differ[:20]:
        print(f"  #{i} gold={pairs[i][1]!r} (a)={r} ours={v} tail={pairs[i][0][-80:]!r}")


if __name__ == "__main__":
    main()
