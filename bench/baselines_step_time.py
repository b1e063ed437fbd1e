"""Time per training step of the baseline recipes (uft, luffy, prefix_rft) relative to grpo on one tiny problem.

Every recipe runs its tiny variant's own method and loss settings on the same
model, problems, group size, batch, completion length, seed and number of
steps; only the problem size is overridden (and LUFFY's and Prefix-RFT's
guided rollouts set to 1 of the 8, their 1-in-8 share). The hint schedules of
uft and prefix_rft span the timed run, so the median step sits mid-schedule.
A step's time includes generation, which differs by method: forced hint
tokens and LUFFY's reference traces are not sampled, but they are in the loss's
forward pass. Runs alternate recipes to spread machine load; each run's first
step (warm-up) is dropped and the median of TRL's ``step_time`` is compared.

Run: python bench/baselines_step_time.py [--model runs/demo/models/base] [--steps 8] [--repeats 3]
(the model: scaffoldrl demo --base-only)

Measured with ``--steps 6 --repeats 2`` (one run of the script, 2-core CPU shared with one or two other
one-thread jobs, so min-max spreads overlap), base of commit 1e35afc: grpo 1.21 s/step; uft x1.33 (every
rollout hinted: longer sequences, plus the imitation term), luffy x1.26, prefix_rft x1.14. (On the earlier
base of bench/tiny_base.py: 2.14 s/step; x1.25, x1.09, x1.07.)
"""

from __future__ import annotations

import statistics
import tempfile
import time

from trainer_overhead import setup, step_times  # same folder: the runner whose timings this script extends

from scaffoldrl.recipes import RECIPE_DIR, load_recipe, reward_functions
from scaffoldrl.trainer import ScaffoldTrainer

RECIPES = ("grpo", "uft", "luffy", "prefix_rft")


def overrides(out: str, steps: int) -> dict:
    """The problem size every recipe gets: 4 questions x 8 completions of at most 64 tokens per step."""
    return dict(output_dir=out, num_generations=8, per_device_train_batch_size=32, max_completion_length=64,
                max_steps=steps, guided_rollouts=1, save_strategy="no", logging_steps=1, seed=0,
                disable_tqdm=True, report_to="none")


def main() -> None:
    args, tokenizer, problems = setup(__doc__.splitlines()[0])
    rewards = reward_functions()

    times: dict[str, list[float]] = {name: [] for name in RECIPES}
    started = time.perf_counter()
    for _ in range(args.repeats):
        for name in RECIPES:
            with tempfile.TemporaryDirectory() as out:
                recipe = load_recipe(RECIPE_DIR / f"{name}.yaml", "tiny", overrides(out, args.steps))
                trainer = ScaffoldTrainer(args.model, recipe.trainer_config(), problems, tokenizer,
                                          reward_funcs=[rewards[r] for r in recipe.rewards])
                times[name] += step_times(trainer)
    median = {name: statistics.median(v) for name, v in times.items()}
    print(f"model {args.model}, {len(problems)} problems, 4 questions x 8 completions (<= 64 tokens) per step, "
          f"{args.repeats} runs x {args.steps - 1} timed steps each, torch threads {args.threads} "
          f"({time.perf_counter() - started:.0f} s)")
    for name in RECIPES:
        v = times[name]
        print(f"{name:<11} median {median[name]:.3f} s/step  x{median[name] / median['grpo']:.2f} of grpo  "
              f"(min {min(v):.3f}, max {max(v):.3f}, n={len(v)})")


if __name__ == "__main__":
    main()
