"""A quick stage-2 learning-rate probe: one seed (100, outside the study's), GRPO, SEELE, PSS and SFT.

Runs the demo pipeline with the default preset, ``STEPS`` stage-2 steps and the given learning rate for
every RL stage (stage 1 included), greedy and avg@8 on the held-out split; prints per model the hard-level
and per-level accuracy and per arm the training statistics. Exploratory: for choosing a study's settings.

Run: python bench/lr_probe.py LR STEPS OUT [--base-from RUN] [--candidates 2] [--conditions 0.15]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lr", type=float)
    parser.add_argument("steps", type=int)
    parser.add_argument("out")
    parser.add_argument("--base-from", default=None, help="a run folder whose base model to reuse")
    parser.add_argument("--candidates", type=int, default=None, help="BaseConfig.world_candidates of that base")
    parser.add_argument("--conditions", type=float, default=None, help="BaseConfig.sft_conditions of that base")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import transformers

    transformers.utils.logging.set_verbosity_error()
    from sample_efficiency import reuse_base

    from scaffoldrl.base_model import BaseConfig
    from scaffoldrl.demo import preset, run_demo

    base = BaseConfig()
    if args.candidates is not None:
        base = dataclasses.replace(base, world_candidates=args.candidates)
    if args.conditions is not None:
        base = dataclasses.replace(base, sft_conditions=args.conditions)
    if args.base_from:
        reuse_base(Path(args.base_from), Path(args.out))
    p = dataclasses.replace(preset("default"), name="probe", base=base, stage2_steps=args.steps,
                            methods=("grpo", "seele", "sft", "pss"), seeds=(100,), learning_rate=args.lr,
                            stage1={"learning_rate": args.lr}, jobs=args.jobs, eval_samples=8,
                            analysis_conditions=("plain",))
    started = time.time()
    result = run_demo(args.out, p, progress=False, log=lambda *_: None)
    print(f"lr {args.lr:g}, {args.steps} stage-2 steps, {time.time() - started:.0f} s")
    for name, model in result["models"].items():
        print(name, {protocol: (round(100 * model[protocol]["hard"], 1),
                                {lv: round(100 * x) for lv, x in model[protocol]["by_level"].items()})
                     for protocol in ("greedy", "avg8")})
    for method, runs in result["stage2"].items():
        run = runs["100"]
        print(method, {k: run[k] for k in ("mean_accuracy", "zero_variance_frac", "mean_target_gap",
                                           "mean_hint_rate", "seconds")})
    print("hard set", result["mining"]["hard"], "of", result["mining"]["candidates"])


if __name__ == "__main__":
    main()
