"""The scaffolding premise on the embedded domain, measured on a base model.

Prints, for held-out problems (the demo's test split):

1. accuracy per level under sampling with 0, ¼, ½, ¾ and all but the last
   reference step forced at the start of the response (95% bootstrap
   intervals over problems);
2. s, the chance that the model writes one hard step (a hidden inverse) right
   when every step before it is given, beside the same for open inverses and
   forward steps, and the share of hidden facts whose most sampled value is right;
3. a 3PL curve (SEELE's) fitted to each hard level's accuracy against the
   hint rate, with its residuals;
4. the share of problems per level with pass@k = 0 at the mining temperature
   (what SPARKLE's mining would keep as hard);
5. the hidden facts bare: the next-token distribution over the values after
   ``b such that f(b) = y so b = `` (mass on the stated candidates, on the right
   value, and how often the right value is the most likely), for the model and
   for the pretrained model of its run folder.

Run: python bench/premise.py --model runs/demo/models/base [--test runs/demo/data/test.jsonl]
     [--samples 8] [--temperature 1.0] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch

from scaffoldrl import domain, tinymodel
from scaffoldrl.generation import SamplingConfig, generate, sample_seed
from scaffoldrl.hints import response_prefix
from scaffoldrl.methods.seele import AdaptiveConfig, fit_three_pl
from scaffoldrl.metrics import bootstrap_ci
from scaffoldrl.prompts import THINK_OPEN, sparkle_prompt
from scaffoldrl.records import read_records
from scaffoldrl.verify import get_grader

FRACTIONS = (("0", 0.0), ("1/4", 0.25), ("1/2", 0.5), ("3/4", 0.75), ("all but last", None))
INVERSE = re.compile(r"such that (\w+)\(\w\) = (?:\w = )?(\d+) so")


def forced(problem, k: int, open_think: bool = False) -> str:
    """The first k reference steps as a forced response prefix, ending with the step separator; with no step,
    nothing, or the opened ``<think>`` alone (``open_think``: the next line written is then the first step)."""
    if k:
        return response_prefix("\n".join(problem.steps[:k]) + "\n")
    return THINK_OPEN if open_think else ""


def steps_for(problem, fraction: float | None) -> int:
    n = len(problem.steps)
    return n - 1 if fraction is None else min(n - 1, int(fraction * n + 0.5))


def sample(model, tok, problems, prefixes, n, temperature, max_new_tokens, tag):
    prompts = [sparkle_prompt(p.problem, tok) for p in problems for _ in range(n)]
    pre = [x for x in prefixes for _ in range(n)]
    seeds = [sample_seed(tag, p.id, j) for p in problems for j in range(n)]
    config = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, batch_size=128)
    return generate(model, tok, prompts, config, prefixes=pre, seeds=seeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo/models/base")
    parser.add_argument("--test", default=None, help="held-out records (default: the model's run folder's test split)")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--mine-temperature", type=float, default=0.6)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sections", default="1,2,3,4,5", help="which of the five measurements to run (3 needs 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test = Path(args.test) if args.test else Path(args.model).parents[1] / "data" / "test.jsonl"
    problems = read_records(test)
    model, tok = tinymodel.load(args.model)
    grader = get_grader()
    base = Path(args.model).parents[1] / "base.json"  # the run's settings: how many candidates its facts state
    candidates = json.loads(base.read_text())["config"]["world_candidates"] if base.exists() else domain.CANDIDATES
    world = domain.World(seed=int(problems[0].meta["world_seed"]), values=int(problems[0].meta["world_values"]),
                         candidates=candidates)
    levels = sorted({int(p.difficulty) for p in problems})
    started = time.perf_counter()
    n = args.samples
    print(f"model {args.model}; {len(problems)} held-out problems ({test}); {n} samples at T = {args.temperature}")

    sections = {int(x) for x in args.sections.split(",")}
    # 1. accuracy per level and hint fraction
    table: dict[int, dict[str, tuple]] = defaultdict(dict)
    curve_points: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for name, fraction in FRACTIONS if 1 in sections else ():
        ks = [steps_for(p, fraction) for p in problems]
        prefixes = [forced(p, k) for p, k in zip(problems, ks)]
        outs = sample(model, tok, problems, prefixes, n, args.temperature, args.max_new_tokens, f"premise-{name}")
        verdicts = grader.grade_batch([(prefixes[i // n] + o, problems[i // n].answer) for i, o in enumerate(outs)])
        for level in levels:
            idx = [i for i, p in enumerate(problems) if int(p.difficulty) == level]
            per_problem = [statistics.fmean(verdicts[i * n + j].correct is True for j in range(n)) for i in idx]
            rate = statistics.fmean(ks[i] / len(problems[i].steps) for i in idx)
            table[level][name] = (statistics.fmean(per_problem), bootstrap_ci(per_problem, resamples=500, seed=0))
            curve_points[level].append((rate, statistics.fmean(per_problem)))
    if 1 in sections:
        print_table(table, levels, n, args.temperature)

    # 2. one step at a time, everything before it given
    if 2 in sections:
        step_success(model, tok, problems, world, n, args.temperature)

    # 3. SEELE's 3PL curve per hard level
    if 1 in sections and 3 in sections:
        print("\n3. 3PL fit of accuracy against the hint rate (no anchors), per level: k, mu, b and residuals")
        for level in (lv for lv in levels if lv >= 3):
            rates, accs = zip(*curve_points[level])
            curve = fit_three_pl(rates, accs, AdaptiveConfig(anchors=False))
            residuals = [a - float(curve(r)) for r, a in zip(rates, accs)]
            print(f"   L{level}: k {curve.k:.2f}, mu {curve.mu:.2f}, b {curve.b:.3f}; points "
                  + ", ".join(f"({r:.2f}, {a:.3f})" for r, a in zip(rates, accs))
                  + "; residuals " + ", ".join(f"{e:+.3f}" for e in residuals)
                  + f"; RMS {statistics.fmean(e * e for e in residuals) ** 0.5:.3f}")

    # 4. what mining keeps
    if 4 in sections:
        outs = sample(model, tok, problems, [""] * len(problems), n, args.mine_temperature, args.max_new_tokens,
                      "premise-mine")
        verdicts = grader.grade_batch([(o, problems[i // n].answer) for i, o in enumerate(outs)])
        print(f"\n4. share of problems with pass@{n} = 0 at T = {args.mine_temperature}, no hint")
        for level in levels:
            idx = [i for i, p in enumerate(problems) if int(p.difficulty) == level]
            hard = [not any(verdicts[i * n + j].correct is True for j in range(n)) for i in idx]
            print(f"   L{level}: {sum(hard)} of {len(hard)}")
    if 5 in sections:
        print("\n5. hidden facts bare: next-token mass over the values after `b such that f(b) = y so b = `")
        for path in (Path(args.model).parent / "pretrained", Path(args.model)):
            if path.exists():
                print(f"   {path}: " + fact_probe(*tinymodel.load(path), world))
    print(f"\n{time.perf_counter() - started:.0f} s, torch threads {args.threads}")


def fact_probe(model, tok, world) -> str:
    """Mass on the candidates and on the right value of every hidden inverse, asked as a bare fact line."""
    ids = [tok.encode(str(v), add_special_tokens=False)[0] for v in range(world.values)]
    candidates, right, mode = [], [], []
    model.eval()
    for name in world.hidden:
        for y in range(world.values):
            enc = tok(f"b such that {name}(b) = {y} so b = ", return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                probs = torch.softmax(model(**enc).logits[0, -1], -1)[ids]
            probs = probs / probs.sum()
            x = world.invert(name, y)
            candidates.append(float(probs[list(world.inverse_candidates(name, y))].sum()))
            right.append(float(probs[x]))
            mode.append(int(probs.argmax()) == x)
    return (f"mass on the {world.candidates} candidates {statistics.fmean(candidates):.3f}, on the right value "
            f"{statistics.fmean(right):.3f}; right value the most likely for {statistics.fmean(mode):.2f} of "
            f"{len(right)} facts")


def print_table(table, levels, n, temperature) -> None:
    print(f"\n1. accuracy (%) by level and forced reference steps, {n} samples at T = {temperature} "
          f"[95% bootstrap interval over problems]")
    print(f"{'level':>5} " + " ".join(f"{name:>18}" for name, _ in FRACTIONS))
    for level in levels:
        cells = [f"{100 * m:5.1f} [{100 * lo:4.1f},{100 * hi:5.1f}]" for m, (lo, hi) in
                 (table[level][name] for name, _ in FRACTIONS)]
        print(f"{level:>5} " + " ".join(f"{c:>18}" for c in cells))


def step_success(model, tok, problems, world, n, temperature) -> None:
    kinds = {"hidden inverse": [], "open inverse": [], "forward": []}
    probes = []
    for p in problems:
        for i, step in enumerate(p.steps):
            m = INVERSE.search(step)
            kind = "forward" if m is None else "hidden inverse" if m[1] in world.hidden else "open inverse"
            if kind == "hidden inverse" or int(p.difficulty) <= 2:
                probes.append((p, i, kind))
    outs = sample(model, tok, [p for p, _, _ in probes], [forced(p, i, open_think=True) for p, i, _ in probes], n,
                  temperature, 32, "premise-step")
    by_fact: dict[tuple, Counter] = defaultdict(Counter)
    for b, (p, i, kind) in enumerate(probes):
        for j in range(n):
            line = outs[b * n + j].split("\n")[0].strip()
            right = line == p.steps[i]
            kinds[kind].append(right)
            if kind == "hidden inverse":
                by_fact[INVERSE.search(p.steps[i]).groups()][right] += 1
    print(f"\n2. one step right, every step before it given ({n} samples at T = {temperature} per step)")
    for kind, hits in kinds.items():
        if hits:
            print(f"   {kind:<15} s = {statistics.fmean(hits):.3f}  ({len(hits) // n} steps)")
    if by_fact:
        print(f"   hidden facts probed: {len(by_fact)}; right in at least one sample: "
              f"{statistics.fmean(c[True] > 0 for c in by_fact.values()):.2f}; right in most samples: "
              f"{statistics.fmean(c[True] > c[False] for c in by_fact.values()):.2f}")


if __name__ == "__main__":
    main()
