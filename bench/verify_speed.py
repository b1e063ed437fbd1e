"""Grading speed on an RL-shaped batch: math-verify in a loop, TRL's accuracy_reward, and ours.

The batch: for each MATH500 and GSM8K problem, a group of 8 completions built
from its reference solution in the formats models produce (boxed, SPARKLE's
<answer> block, "The answer is", \\dfrac spelling, a final-answer line: "#### N"
for GSM8K, Minerva's "Final Answer:" for MATH; a repeat), with either two more
right answers (\\fbox, a bare <answer> block: ``--mix reference``) or another
problem's answer and a truncated solution with no answer (``--mix mixed``).
Gold answers are given to every grader as ``\\boxed{gold}``.

Our grader runs with ``--extraction`` (default: every rule, then math-verify's
own extraction for completions with no marked answer; strict: tags and boxes).
``--profile`` splits the workers' time by what they were asked (answers or
whole texts). Our workers warm latex2sympy's parser before the clock starts
(``Grader(warm_up=True)``, as a grader that idles between RL steps has done);
``--cold`` measures them without it, as (a) runs. ``--skip-trl`` leaves (b) out.

Run: python bench/verify_speed.py [--problems 500] [--gsm8k 125] [--mix mixed|reference] [--extraction default|strict]
       [--cold] [--skip-trl] [--workers 1 2]
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
from scaffoldrl.verify import Grader, gold_answer

def group(solution: str, answer: str, other: str, gsm8k: bool, mix: str) -> dict[str, str]:
    """Eight completions for one problem, as a GRPO group would hold them.

    ``reference``: all eight carry the right answer; ``mixed``: two of them
    are replaced by another problem's answer and a truncated solution.
    """
    body = solution.replace(f"\\boxed{{{last_boxed(solution)}}}", last_boxed(solution) or "")
    boxed = f"{body}\n\nTherefore the final answer is $\\boxed{{{answer}}}$."
    final_line = (f"#### {answer}" if gsm8k else
                  f"Final Answer: The final answer is ${answer}$. I hope it is correct.")
    common = {
        "boxed": boxed,
        "sparkle_tags": f"<think>\n{body}\n</think>\n<answer>\nThe answer is \\boxed{{{answer}}}.\n</answer>",
        "answer_is": f"{body}\nThe answer is ${answer}$.",
        "dfrac": boxed.replace("\\frac", "\\dfrac"),
        "final_line": f"{body}\n{final_line}",
        "repeat": boxed,
    }
    if mix == "mixed":
        return common | {"other_answer": f"{body}\n\nTherefore the final answer is $\\boxed{{{other}}}$.",
                         "truncated": body[: len(body) // 2]}
    return common | {"fbox": f"{body}\nSo we get \\fbox{{{answer}}}.",
                     "bare_answer_tag": f"<think>{body}</think><answer>{answer}</answer>"}


def build_batch(n_math: int, n_gsm8k: int, mix: str = "mixed") -> tuple[list[tuple[str, str]], list[str]]:
    """(completion, gold) pairs and the format name of each."""
    problems = list(load_source("math500"))[:n_math] + list(load_source("gsm8k"))[:n_gsm8k]
    pairs, formats = [], []
    for i, p in enumerate(problems):
        other = next(q.answer for q in problems[i + 1 :] + problems if q.answer != p.answer)
        for name, completion in group(p.solution, p.answer, other, p.source == "gsm8k", mix).items():
            pairs.append((completion, p.answer))
            formats.append(name)
    return pairs, formats


def plain_math_verify(pairs) -> list[bool]:
    return [verify(parse(f"\\boxed{{{gold}}}"), parse(completion)) for completion, gold in pairs]


def trl_accuracy(pairs) -> list[float | None]:
    completions = [[{"role": "assistant", "content": c}] for c, _ in pairs]
    return accuracy_reward(completions, [f"\\boxed{{{g}}}" for _, g in pairs])


def ours(pairs, workers: int, chunk: int = 256, extraction: str = "default", warm_up: bool = True):
    """Graded in chunks of ``chunk`` items, as successive RL steps would call it; workers started
    (and with ``warm_up`` warmed) first."""
    with Grader(workers=workers, extraction=extraction, warm_up=warm_up) as grader:
        grader.warm_up_now()  # start workers off the clock
        grader.grade_batch([(f"\\boxed{{x+{i}}}", f"{i}+x") for i in range(workers)])
        grader.stats.clear()
        start = time.perf_counter()
        verdicts = [v for i in range(0, len(pairs), chunk) for v in grader.grade_batch(pairs[i : i + chunk])]
        return verdicts, time.perf_counter() - start, dict(grader.stats)


def disagreements_on_extracted(pairs, verdicts) -> int:
    """Graded items where math-verify, given our extracted answer, says otherwise: errors of the fast path and cache."""
    return sum(verify(parse(f"\\boxed{{{gold_answer(gold)}}}"), parse(f"\\boxed{{{v.extracted}}}")) != v.correct
               for (_, gold), v in zip(pairs, verdicts) if v.status == "ok" and v.rule != "math_verify")


def same_answer_disagreements(pairs, reference, verdicts) -> tuple[int, int]:
    """(items where math-verify's own extraction finds the answer we graded, those of them whose verdicts differ)."""
    same = differ = 0
    for (completion, _), r, v in zip(pairs, reference, verdicts):
        found = parse(completion)
        if v.extracted is not None and found and isinstance(found[-1], str) and found[-1].strip() == v.extracted:
            same += 1
            differ += bool(v.correct) != r
    return same, differ


class WorkerClock:
    """Seconds the workers spent per kind of request ("answer": extracted answers; "text": whole texts), and the requests."""

    def __init__(self):
        from scaffoldrl import verify as grader_module

        self.seconds, self.count, self._module = Counter(), Counter(), grader_module
        self.requests: list[tuple[list, list]] = []  # (gold, pred) as sent
        self._ask = grader_module._Worker.ask

    def __enter__(self):
        clock, ask = self, self._ask

        def timed_ask(worker, gold, pred, timeout):
            clock.requests.append((list(gold), list(pred)))
            start = time.perf_counter()
            try:
                return ask(worker, gold, pred, timeout)
            finally:
                kind = "text" if pred[0] == "t" else "answer"
                clock.seconds[kind] += time.perf_counter() - start
                clock.count[kind] += 1

        self._module._Worker.ask = timed_ask
        return self

    def __exit__(self, *exc):
        self._module._Worker.ask = self._ask


def timed(fn, *args):
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=500, help="MATH500 problems (8 completions each)")
    parser.add_argument("--gsm8k", type=int, default=125, help="GSM8K problems (8 completions each)")
    parser.add_argument("--mix", choices=["mixed", "reference"], default="mixed",
                        help="groups with wrong and unanswered completions, or all carrying the right answer")
    parser.add_argument("--extraction", choices=["default", "strict"], default="default")
    parser.add_argument("--profile", action="store_true", help="the workers' time per kind of request (1 worker)")
    parser.add_argument("--cold", action="store_true", help="our workers without their warm-up")
    parser.add_argument("--skip-trl", action="store_true", help="leave TRL's accuracy_reward out")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    pairs, formats = build_batch(args.problems, args.gsm8k, args.mix)
    print(f"batch ({args.mix}, extraction {args.extraction}): {len(pairs)} completions, mean {sum(len(c) for c, _ in pairs) / len(pairs):.0f} chars")

    reference, t_plain = timed(plain_math_verify, pairs)
    print(f"(a) math-verify loop      {len(pairs) / t_plain:8.1f} items/s  ({t_plain:.1f}s)")
    if not args.skip_trl:
        trl, t_trl = timed(trl_accuracy, pairs)
        print(f"(b) TRL accuracy_reward   {len(pairs) / t_trl:8.1f} items/s  ({t_trl:.1f}s)")
    for workers in args.workers:
        with WorkerClock() as clock:
            verdicts, t, stats = ours(pairs, workers, extraction=args.extraction, warm_up=not args.cold)
        print(f"(c) ours, {workers} worker(s){' cold' if args.cold else ''}  {len(pairs) / t:8.1f} items/s  ({t:.1f}s)  "
              f"{t_plain / t:.1f}x (a); {stats}")
        if args.profile and workers == 1:
            print("    workers' wall time per request kind: " + ", ".join(
                f"{k} {clock.count[k]} requests {clock.seconds[k]:.2f}s" for k in sorted(clock.count)))
    differ = [(i, r, v) for i, (r, v) in enumerate(zip(reference, verdicts)) if bool(v.correct) != r]
    kinds = Counter(f"{formats[i]}: ours {v.correct} ({v.status}, {v.rule})" for i, _, v in differ)
    print(f"verdicts differing from (a): {len(differ)}  {dict(kinds)}")
    if not args.skip_trl:
        trl_differ = sum((t == 1.0) != bool(v.correct) for t, v in zip(trl, verdicts))
        print(f"verdicts differing from (b): {trl_differ} (None from TRL: {sum(t is None for t in trl)})")
    print(f"verdicts differing from math-verify on our extracted answers: {disagreements_on_extracted(pairs, verdicts)}")
    same, same_differ = same_answer_disagreements(pairs, reference, verdicts)
    print(f"items where math-verify extracts the answer we graded: {same}; verdicts differing from (a) among them: {same_differ}")
    for i, r, v in differ[:10]:
        print(f"  #{i} gold={pairs[i][1]!r} (a)={r} ours={v} tail={pairs[i][0][-80:]!r}")


if __name__ == "__main__":
    main()
