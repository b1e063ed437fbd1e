"""SEELE on the embedded domain: does training accuracy track a*? Beside plain GRPO on the same problems.

Runs the tiny variants of the seele and grpo recipes (same
model, problems, group size and steps) and prints, per step, SEELE's mean
hint rate, per-round accuracy, |mean accuracy − a*| and fraction of groups
with zero reward variance, next to GRPO's accuracy and zero-variance fraction.
Warm-up is the first epoch: until every question has been visited once (its
first visit starts cold, at all-but-the-last step). Also prints the time share
of the extra rounds (rounds 1..m−1) in a SEELE step.

The model is the demo's base (``scaffoldrl demo --base-only``): on levels 3-4
its samples differ where a step inverts a function it never saw inverted, so a
question's accuracy grows with the hint instead of jumping from 0 to 1.

Run: python bench/seele_tracking.py [--model runs/demo/models/base] [--steps 30] [--set hint_unit=steps ...]

Measured (one run each, 2-core CPU shared with one other job, base built by ``scaffoldrl demo``):
- base of the current domain (level 2 with 1-3 open inverses): after warm-up SEELE's mean accuracy 0.497
  (|mean − a*| 0.003; per-step gap mean 0.054, max 0.133, within 0.05 on 15 of 26 steps — 128 samples a
  step put ~0.044 of binomial noise on each step's accuracy) at a mean hint rate of 0.60; zero-variance
  groups 0.000 vs GRPO's 0.688; step 8.6 s vs 4.2 s, rounds 1-3 30% of a SEELE step.
- base of commit 1e35afc (one inverse line per training problem; 22% at level 4 even given all but the
  last step): mean accuracy 0.368, within 0.05 on 3 of 26 steps — no hint rate reaches 0.5 where the
  base cannot finish; on level 3 alone (``--set 'data={domain: {n: 32, levels: [3], seed: 0}}'``) 0.450.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch

from scaffoldrl.recipes import load_recipe, parse_overrides, run_recipe



def train(name: str, out: Path, overrides: dict):
    """Run a tiny recipe; its per-step logs and the recipe."""
    recipe = load_recipe(name, "tiny", {**overrides, "output_dir": str(out / name)})
    with contextlib.redirect_stdout(io.StringIO()):  # TRL prints every step's log; the table below has them
        run_recipe(recipe)
    state = json.loads((out / name / "trainer_state.json").read_text())
    return [log for log in state["log_history"] if "hint/mean_accuracy" in log], recipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/demo/models/base", help="made by scaffoldrl demo --base-only")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for the tiny model)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not Path(args.model).exists():
        raise SystemExit(f"no model at {args.model}: make it with scaffoldrl demo --base-only")
    overrides = {"model": args.model, "max_steps": args.steps, "save_strategy": "no", "disable_tqdm": True,
                 **parse_overrides(args.sets)}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        seele, recipe = train("seele", Path(tmp), overrides)
        grpo, _ = train("grpo", Path(tmp), overrides)
    config = recipe.trainer_config()
    target, rounds = config.target, config.rounds
    questions = config.per_device_train_batch_size // config.num_generations
    warmup = math.ceil(len(recipe.problems()) / questions)

    print(f"model {args.model}; {len(recipe.problems())} problems ({recipe.data}); {questions} questions x "
          f"{rounds} rounds x {config.num_generations // rounds} samples per SEELE step, {config.num_generations} "
          f"per GRPO group; a* = {target}; unit {config.hint_unit}; warm-up {warmup} steps; "
          f"{time.perf_counter() - started:.0f} s")
    head = " ".join(f"acc_r{r}" for r in range(rounds))
    print(f"{'step':>4} {'rate':>5} {head} {'acc':>5} {'|acc-a*|':>8} {'zv_seele':>8} | {'acc_grpo':>8} {'zv_grpo':>7}")
    for s, g in zip(seele, grpo):
        accs = " ".join(f"{s.get(f'hint/accuracy_round{r}', float('nan')):6.3f}" for r in range(rounds))
        print(f"{s['step']:>4} {s['hint/mean_rate']:5.3f} {accs} {s['hint/mean_accuracy']:5.3f} "
              f"{s['hint/target_gap']:8.3f} {s['hint/zero_variance_frac']:8.3f} | "
              f"{g['hint/mean_accuracy']:8.3f} {g['hint/zero_variance_frac']:7.3f}")

    after = [s for s in seele if s["step"] > warmup]
    after_grpo = [g for g in grpo if g["step"] > warmup]
    if not after:
        raise SystemExit(f"no step after the {warmup}-step warm-up to summarise: use --steps > {warmup}")
    mean = lambda logs, key: statistics.fmean(log[key] for log in logs)  # noqa: E731
    accuracy = mean(after, "hint/mean_accuracy")
    print(f"after warm-up (steps {warmup + 1}-{seele[-1]['step']}):")
    print(f"  SEELE mean accuracy {accuracy:.3f}, |mean - a*| = {abs(accuracy - target):.3f}; per-step "
          f"|acc - a*| mean {mean(after, 'hint/target_gap'):.3f}, max {max(s['hint/target_gap'] for s in after):.3f}, "
          f"within 0.05 on {sum(s['hint/target_gap'] <= 0.05 for s in after)}/{len(after)} steps")
    print(f"  zero-variance groups: SEELE {mean(after, 'hint/zero_variance_frac'):.3f} vs GRPO "
          f"{mean(after_grpo, 'hint/zero_variance_frac'):.3f} (all steps: {mean(seele, 'hint/zero_variance_frac'):.3f} "
          f"vs {mean(grpo, 'hint/zero_variance_frac'):.3f}); GRPO accuracy {mean(after_grpo, 'hint/mean_accuracy'):.3f}")
    extra = [sum(s[f"rollout/round{r}_seconds"] for r in range(1, rounds)) for s in seele]
    step_time = [s["step_time"] for s in seele]
    print(f"  SEELE step {statistics.median(step_time):.2f} s (median), GRPO step "
          f"{statistics.median(g['step_time'] for g in grpo):.2f} s; rounds 1..{rounds - 1} take "
          f"{statistics.fmean(e / t for e, t in zip(extra, step_time)):.1%} of a SEELE step "
          f"(round 0 {statistics.fmean(s['rollout/round0_seconds'] / s['step_time'] for s in seele):.1%})")


if __name__ == "__main__":
    main()
