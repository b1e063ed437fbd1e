"""Time per training step: ScaffoldTrainer with method "grpo" vs plain TRL GRPOTrainer on the same tiny problem.

Both runs get the same model, rows, reward (correctness by the shared grader),
sampling and seed, so they generate the same completions; the difference is
our rollout (TRL's generate called from ``rollout_func``, a grading pass per
round, the hint statistics) and our loss additions. Runs alternate
plain/ours to spread machine load evenly; each run's first step (warm-up) is
dropped and the median step time (TRL's ``step_time``) is compared.

Run: python bench/trainer_overhead.py [--model runs/demo/models/base] [--steps 8] [--repeats 3]
(the model: scaffoldrl demo --base-only)

Measured with ``--steps 8 --repeats 3 --threads 1`` on the base of commit 1e35afc (2-core CPU shared with one
other one-thread job; one run of the script): plain TRL 0.881 s/step, ours with method "grpo" 0.835 s/step
(median of 21 timed steps each), ratio 0.95 (target <= 1.10).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import AutoTokenizer
from trl import GRPOConfig, GRPOTrainer

from scaffoldrl import domain
from scaffoldrl.methods.grpo import GRPO
from scaffoldrl.rewards import correctness_reward
from scaffoldrl.trainer import ScaffoldConfig, ScaffoldTrainer


def settings(out: str, steps: int) -> dict:
    return dict(output_dir=out, num_generations=8, per_device_train_batch_size=32, max_completion_length=64,
                max_steps=steps, learning_rate=1e-5, beta=0.001, temperature=1.0, bf16=False, use_cpu=True,
                gradient_checkpointing=False, report_to="none", logging_steps=1, save_strategy="no",
                dataloader_num_workers=0, seed=0, disable_tqdm=True)


def step_times(trainer) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):  # TRL prints every step's log
        trainer.train()
    return [log["step_time"] for log in trainer.state.log_history if "step_time" in log][1:]


def setup(description: str):
    """The command line both step-time benches share: (args, tokenizer, the 8 problems every run trains on)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default="runs/demo/models/base", help="made by scaffoldrl demo --base-only")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for the tiny model)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not Path(args.model).exists():
        raise SystemExit(f"no model at {args.model}: make it with scaffoldrl demo --base-only")
    return args, AutoTokenizer.from_pretrained(args.model), domain.generate(8, (2, 3), seed=0)


def main() -> None:
    args, tokenizer, problems = setup(__doc__.splitlines()[0])
    rows = Dataset.from_list([r.to_dict() for r in GRPO().rows(problems).rows])

    times: dict[str, list[float]] = {"trl": [], "ours": []}
    started = time.perf_counter()
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            plain = GRPOTrainer(args.model, reward_funcs=[correctness_reward], args=GRPOConfig(**settings(out, args.steps)),
                                train_dataset=rows, processing_class=tokenizer)
            times["trl"] += step_times(plain)
            ours = ScaffoldTrainer(args.model, ScaffoldConfig(**settings(out, args.steps), method="grpo"), problems,
                                   tokenizer)
            times["ours"] += step_times(ours)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"model {args.model}, {len(problems)} problems, 4 questions x 8 completions per step, "
          f"{args.repeats} runs x {args.steps - 1} timed steps each, torch threads {args.threads} "
          f"({time.perf_counter() - started:.0f} s)")
    for name, label in (("trl", "plain TRL GRPOTrainer"), ("ours", "ScaffoldTrainer, method grpo")):
        v = times[name]
        print(f"{label:<30} median {median[name]:.3f} s/step  (min {min(v):.3f}, max {max(v):.3f}, n={len(v)})")
    print(f"ratio ours / TRL: {median['ours'] / median['trl']:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
