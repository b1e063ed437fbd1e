"""Stage 2 at equal rollout budgets over several seeds: does scaffolding beat plain GRPO on hard problems?

Runs the demo pipeline (:func:`scaffoldrl.demo.run_demo`; resumable in
``--out``) with the chosen preset and seeds: one base model, one SPARKLE
stage-1 model and one mined hard set, then stage 2 from the stage-1 model with
plain GRPO, SPARKLE PSS, SEELE and UFT, once per seed, every method generating
the same number of completions. Prints per method: held-out accuracy on the
hard levels without hints (mean over seeds ± 95% t-interval; greedy, and
avg@n when the preset samples), its difference to GRPO paired by seed,
rollouts, wall time, fraction of zero-variance groups and mean |train accuracy
− a*|; writes the table, the command and the machine to ``bench/RESULTS.md``.

Run: python bench/sample_efficiency.py [--preset full] [--seeds 0,1,2] [--out runs/sample_efficiency] [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = cpu
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.system()} {platform.release()}, {os.cpu_count()} CPU cores ({model}), torch "
            f"{torch.__version__} with {torch.get_num_threads()} thread(s), no GPU used; load average at the end "
            f"{load:.1f}")


def reuse_base(source: Path, out: Path) -> None:
    """Copy a demo folder's base model, its data and the markers of build_base's stages (so they are skipped)."""
    import shutil

    if (out / "models" / "base").exists():
        return
    for part in ("data", "models/base"):
        shutil.copytree(source / part, out / part)
    (out / "stages").mkdir(parents=True, exist_ok=True)
    for stage in json.loads((source / "base.json").read_text())["stage_seconds"]:
        shutil.copy(source / "stages" / f"{stage}.json", out / "stages" / f"{stage}.json")
    print(f"reusing the base model of {source}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", help="demo preset: full (the study) or default (fits minutes)")
    parser.add_argument("--seeds", default="0,1,2", help="stage-2 seeds, comma-separated (>= 3 for intervals)")
    parser.add_argument("--out", default=None, help="run folder (default runs/sample_efficiency-PRESET)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate of every stage-2 arm (default: the preset's)")
    parser.add_argument("--base-from", default=None,
                        help="a demo folder whose base model (data, models/base, base stages) to reuse instead of "
                             "building one; it must have been built with the preset's base settings")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)")
    parser.add_argument("--jobs", type=int, default=None, help="stage-2 runs and evaluations at once (default: the "
                                                              "preset's); each process gets threads / jobs threads")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    from rich.console import Console

    from scaffoldrl.demo import preset, run_demo
    from scaffoldrl.metrics import across_seeds

    console = Console()
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    chosen = dataclasses.replace(preset(args.preset), seeds=seeds)
    if args.lr is not None:
        chosen = dataclasses.replace(chosen, learning_rate=args.lr)
    if args.jobs is not None:
        chosen = dataclasses.replace(chosen, jobs=args.jobs)
    out = Path(args.out or f"runs/sample_efficiency-{args.preset}" + (f"-lr{args.lr:g}" if args.lr else ""))
    if args.base_from:
        reuse_base(Path(args.base_from), out)
    started = time.perf_counter()
    summary = run_demo(out, chosen, log=console.print)
    elapsed = time.perf_counter() - started

    methods, models, stage2 = list(summary["methods"]), summary["models"], summary["stage2"]
    protocols = [k for k in models["base"] if k != "path"]
    label = lambda m, s: m if len(seeds) == 1 else f"{m}_seed{s}"  # noqa: E731

    def hard(method: str, protocol: str) -> list[float]:
        return [models[label(method, s)][protocol]["hard"] for s in seeds]

    def pm(values, scale=100.0, fmt=".1f") -> str:
        mean, half = across_seeds(values)
        return "–" if mean is None else f"{scale * mean:{fmt}}" + ("" if half is None else f" ± {scale * half:{fmt}}")

    header = ["method", "recipe"]
    for protocol in protocols:
        header += [f"hard held-out, {protocol} (%)", f"Δ vs grpo, {protocol} (pts)"]
    header += ["hard: right answer and every step, greedy (%)", "rollouts", "wall s", "zero-variance groups",
               "|train acc − a*| per step", "train acc", "after warm-up: |train acc − a*| per step", "train acc",
               "hint rate"]
    rows = []
    for method in methods:
        runs = [stage2[method][str(s)] for s in seeds]
        row = [method, summary["methods"][method]]
        for protocol in protocols:
            ours = hard(method, protocol)
            diffs = [a - b for a, b in zip(ours, hard("grpo", protocol))] if "grpo" in methods else []
            row += [pm(ours), "–" if method == "grpo" or not diffs else pm(diffs)]
        row += [pm([models[label(method, s)]["greedy"].get("exact", {}).get("hard") for s in seeds]),
                str(runs[0]["rollouts"]), pm([r["seconds"] for r in runs], 1, ".0f"),
                pm([r["zero_variance_frac"] for r in runs], 1, ".3f"), pm([r["mean_target_gap"] for r in runs], 1, ".3f"),
                pm([r["mean_accuracy"] for r in runs], 1, ".3f"),
                pm([r["target_gap_after_warm_up"] for r in runs], 1, ".3f"),
                pm([r["accuracy_after_warm_up"] for r in runs], 1, ".3f"), pm([r["mean_hint_rate"] for r in runs], 1, ".3f")]
        rows.append(row)
    reference = [[name, "–", *(x for p in protocols for x in (f"{100 * models[name][p]['hard']:.1f}", "")),
                  pm([models[name]["greedy"].get("exact", {}).get("hard")])] for name in ("base", "stage1")]
    extra = []
    if {"seele", "pss"} <= set(methods):
        for protocol in protocols:
            diffs = [a - b for a, b in zip(hard("seele", protocol), hard("pss", protocol))]
            extra.append(f"SEELE − PSS, hard held-out, {protocol}: {pm(diffs)} points (paired by seed)")

    table = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    table += ["| " + " | ".join(r + [""] * (len(header) - len(r))) + " |" for r in reference]
    total = sum(summary["stage_seconds"].values())
    after_base = total - summary["base_seconds"]
    mining = summary["mining"]
    preset_info = summary["preset"]
    lines = [
        f"## Stage 2 at equal rollouts: preset `{args.preset}`, seeds {list(seeds)}",
        "",
        f"Command: `{' '.join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])}` "
        f"({datetime.date.today().isoformat()}): this invocation took {elapsed / 60:.1f} min of wall time (a rerun "
        f"resumes finished stages); its stages' own times add up to {after_base / 60:.1f} min after the base model "
        f"and {(total - after_base) / 60:.1f} min for it ({chosen.jobs} stage-2 runs and evaluations at a time).",
        "",
        f"Machine: {machine()}.",
        "",
        f"Hard set: {mining['hard']} of {mining['candidates']} pool problems (levels "
        f"{', '.join(map(str, preset_info['mine_levels']))}) with pass@{mining['k']} = 0 at T = {mining['temperature']} "
        f"for the stage-1 model. Stage 2: {preset_info['stage2_steps']} steps × {preset_info['stage2_groups']} groups × "
        f"{preset_info['group']} completions per method and seed. Held-out: the demo's test split, hard = levels "
        f"{', '.join(models['base']['greedy']['hard_levels'])} "
        f"({sum(1 for _ in models['base']['greedy']['hard_levels'])} levels), no hints. ± is the 95% t-interval "
        "over seeds; Δ is paired by seed.",
        "",
        *table,
        "",
        *[f"- {e}" for e in extra],
        "",
    ]
    text = "\n".join(lines)
    console.print(text)
    if not args.no_write:
        write_section(text)
        console.print(f"written to {RESULTS}")


def write_section(text: str) -> None:
    """Put a result section into RESULTS.md, replacing an earlier one with the same heading."""
    head = "# bench/sample_efficiency.py results\n"
    sections = RESULTS.read_text().split("\n## ")[1:] if RESULTS.exists() else []
    title = text.split("\n", 1)[0].removeprefix("## ")
    new = text.removeprefix("## ")
    titles = [s.split("\n", 1)[0] for s in sections]
    if title in titles:  # in place, so that notes written below a result stay below it
        sections[titles.index(title)] = new
    else:
        sections.append(new)
    RESULTS.write_text(head + "".join(f"\n## {s.rstrip()}\n" for s in sections))


if __name__ == "__main__":
    main()
