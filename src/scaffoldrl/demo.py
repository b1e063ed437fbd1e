"""The embedded demo after the base model: stage 1, hard problems, stage 2 per method at equal rollouts, evaluation.

stage 1 (SPARKLE's recipe, mixed difficulty) → mine hard problems (pass@k = 0)
→ stage 2 on them with equal rollout budgets (plain GRPO, SPARKLE PSS, SEELE,
UFT; one run per seed) → held-out evaluation of every model → SPARKLE's
analysis of base / stage 1 / best stage 2 → one report. Every step is a
resumable stage (:class:`scaffoldrl.runs.Stages`) under the run folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import domain, tinymodel
from .base_model import BaseConfig, build_base
from .records import read_records, write_records
from .runs import Stages, check_settings
from .sft import SFTSettings

STAGE2 = {"grpo": "grpo", "pss": "sparkle_stage2_aug", "seele": "seele", "uft": "uft", "sft": "sft"}
"""Stage-2 methods and the recipe (tiny variant) each one runs. ``sft`` imitates the hard problems' reference
responses with as many updates and sequences per update as the RL methods generate: the imitation upper bound."""


@dataclass
class Preset:
    """Sizes of the pipeline after the base model; ``default`` fits the 2-core budget, ``full`` is the seed study."""

    name: str = "default"
    base: BaseConfig = field(default_factory=BaseConfig)
    pool_per_level: int = 24
    """Training problems per level (all levels) that stage 1 trains on and hard problems are mined from."""
    stage1_steps: int = 20
    stage1: dict = field(default_factory=dict)
    """Config overrides of the sparkle_stage1 recipe."""
    mine_levels: tuple[int, ...] = (3, 4, 5)
    """Levels whose pool problems are candidates for the hard set."""
    mine_k: int = 8
    """Samples per candidate at the stage-1 recipe's temperature; pass@k = 0 makes a problem hard."""
    stage2_steps: int = 12
    stage2_groups: int = 4
    """Groups per stage-2 step: questions (grpo, seele, uft) or prompt-side hint rows (pss)."""
    group: int = 16
    """Completions per group (seele: 4 rounds of group/4). Every method generates steps x groups x group."""
    stage2: dict = field(default_factory=dict)
    """Config overrides shared by every stage-2 recipe."""
    learning_rate: float | None = 3e-4
    """The learning rate of every stage-2 arm (None keeps each recipe's: 2e-5 in the tiny RL variants, which
    barely moves the tiny model in 12-60 steps). Stage 1 keeps its recipe's unless ``stage1`` sets one: at 3e-4
    its 20 steps cost levels 1-2 a third of their accuracy (docs/findings/stage2_study.md)."""
    methods: tuple[str, ...] = tuple(STAGE2)
    seeds: tuple[int, ...] = (0,)
    """Stage-2 training seeds (sampling, UFT draws); stage 1 and the hard set are shared."""
    jobs: int = 2
    """Stage-2 runs and evaluations at once, each in its own process with a share of the torch threads: on a CPU
    two one-thread processes do more work than one two-thread process."""
    eval_samples: int = 0
    """Besides greedy pass@1: this many samples per held-out problem at ``eval_temperature`` (0: greedy only)."""
    eval_temperature: float = 0.6
    analysis_limit: int | None = 40
    """Held-out problems (spread over the levels) in SPARKLE's analysis; None: all."""
    analysis_conditions: tuple[str, ...] = ("plain", "plan", "knowledge", "chain")
    max_new_tokens: int = 128
    """Response limit of every RL stage and evaluation: the longest reference response (6 steps) is 113 tokens."""


def preset(name: str) -> Preset:
    """``default`` (the 2-core budget), ``full`` (5 seeds, longer stage 2: the preregistered study in
    ``docs/findings/stage2_study.md``), ``smoke`` (seconds: tests)."""
    if name == "default":
        return Preset()
    if name == "full":
        return Preset(name="full", pool_per_level=48, stage1_steps=40, mine_k=8, stage2_steps=40,
                      seeds=(0, 1, 2, 3, 4), eval_samples=8, analysis_limit=None)
    if name == "smoke":
        return Preset(
            name="smoke",
            base=BaseConfig(train_per_level=8, test_per_level=2, fact_repeats=1, sft_fact_repeats=1,
                            pretrain=SFTSettings(epochs=1, learning_rate=1e-3, batch_size=64),
                            sft=SFTSettings(epochs=1, learning_rate=1e-3, batch_size=16),
                            model=tinymodel.TinyModelConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                            num_attention_heads=2, num_key_value_heads=1),
                            max_new_tokens=8),
            pool_per_level=2, stage1_steps=2, stage1={"num_generations": 4, "per_device_train_batch_size": 8},
            mine_k=2, stage2_steps=2, stage2_groups=1, group=4, seeds=(0,), jobs=1, eval_samples=2,
            analysis_limit=5, max_new_tokens=12)
    raise ValueError(f"unknown preset {name!r}: default, full or smoke")


PRESETS = ("default", "full", "smoke")


def demo_recipe(name: str, model: str | Path, records: str | Path, output_dir: str | Path, steps: int,
                overrides: dict | None = None):
    """A recipe's tiny variant pointed at the demo's model, problems and folder (no checkpoints: stages resume)."""
    from .recipes import load_recipe

    recipe = load_recipe(name, "tiny", {
        "model": str(model), "output_dir": str(output_dir), "max_steps": steps, "save_strategy": "no",
        "logging_steps": 1, "disable_tqdm": True, **(overrides or {})})
    recipe.data = {"records": str(records)}
    return recipe


def training_progress(label: str, enabled: bool = True):
    """A transformers ``TrainerCallback`` drawing a rich bar for a training stage: step, reward, accuracy, hint."""
    from rich.progress import MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from transformers import TrainerCallback

    class Bar(TrainerCallback):
        bar = task = None

        def on_train_begin(self, args, state, control, **kwargs):
            if enabled:
                self.bar = Progress(*Progress.get_default_columns(), MofNCompleteColumn(), TimeElapsedColumn(),
                                    TextColumn("{task.fields[info]}"))
                self.bar.start()
                self.task = self.bar.add_task(label, total=state.max_steps, info="")

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is None or not logs:
                return
            info = " ".join(f"{key} {logs[name]:.2f}" for key, name in (
                ("reward", "reward"), ("acc", "hint/mean_accuracy"), ("hint", "hint/mean_rate"),
                ("zero-var", "frac_reward_zero_std")) if name in logs)
            self.bar.update(self.task, completed=state.global_step, **({"info": info} if info else {}))

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)
                self.bar.stop()
                self.bar = None

    return Bar()


def train_stage(recipe, label: str, progress: bool = True) -> dict:
    """Run a recipe with a progress bar; its rollout count (SFT: sequences trained) and per-step log."""
    import contextlib
    import io

    from .recipes import run_recipe

    config = recipe.trainer_config()
    with contextlib.redirect_stdout(io.StringIO()) if not progress else contextlib.nullcontext():
        out = run_recipe(recipe, callbacks=[training_progress(label, progress)])
    logs = [log for log in json.loads((out / "trainer_state.json").read_text())["log_history"] if "step" in log]
    steps = max((log["step"] for log in logs), default=0)
    completions = config.per_device_train_batch_size * config.gradient_accumulation_steps
    group = getattr(config, "num_generations", 1)  # an SFT config: one reference response per question
    return {"model": str(out), "steps": steps, "rollouts": steps * completions,
            "groups_per_step": completions // group, "group": group,
            "temperature": getattr(config, "temperature", None), "learning_rate": config.learning_rate,
            "method": getattr(config, "method", recipe.trainer), "target": getattr(config, "target", None),
            "logs": [log for log in logs if "loss" in log or "reward" in log]}


def _protocol(name: str, samples: int, temperature: float, max_new_tokens: int, seed: int = 0):
    from .evaluate import Protocol, Sampling

    sampling = Sampling() if samples == 0 else Sampling(n=samples, temperature=temperature)
    return Protocol(name=name, default=sampling, max_new_tokens=max_new_tokens, seed=seed, bootstrap=500)


def _samples(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines() if line.strip()]


def evaluate_model(model: str | Path, records: Path, protocol, out: Path, hard_levels: tuple[int, ...],
                   progress: bool = True) -> dict:
    """Held-out accuracy of one model per level (and over the hard levels) with :func:`scaffoldrl.evaluate.evaluate`."""
    from .evaluate import evaluate, level_key, summarize_rows
    from .generation import TransformersBackend

    backend = TransformersBackend(str(model))
    try:
        summary = evaluate(backend, str(model), [f"heldout={records}"], protocol, out, progress=progress)["heldout"]
    finally:
        backend.close()
    rows = _samples(out)
    hard = [r for r in rows if r.get("difficulty") in hard_levels]
    sampling = protocol.default
    hard_summary = summarize_rows(hard, sampling, protocol) if hard else None
    return {"protocol": protocol.name, "samples": summary["samples"], "overall": summary["score"],
            "overall_ci": summary["ci"][_headline(summary)],
            "by_level": {k: v["score"] for k, v in summary.get("by_difficulty", {}).items()},
            "by_level_ci": {k: v["ci"][_headline(v)] for k, v in summary.get("by_difficulty", {}).items()},
            "hard_levels": [level_key(v) for v in hard_levels],
            "hard": hard_summary["score"] if hard_summary else None,
            "hard_ci": hard_summary["ci"][_headline(hard_summary)] if hard_summary else None}


def exact_steps(folder: Path, references: dict[str, list[str]], hard_levels: tuple[int, ...]) -> dict:
    """How often a right answer comes with right reasoning: the share of samples that are correct *and* contain
    every reference step verbatim, per level and over the hard levels.

    On the embedded domain a step's text is determined (each restates its line and its value), so a correct answer
    without the reference steps is a lucky guess at the final value (about 1 in ``world_values``).
    """
    from .evaluate import level_key

    cells: dict[str, list[bool]] = {}
    for row in _samples(folder):
        exact = bool(row["correct"]) and all(step in row["completion"] for step in references[row["problem_id"]])
        cells.setdefault(level_key(row["difficulty"]), []).append(exact)
        if row["difficulty"] in hard_levels:
            cells.setdefault("hard", []).append(exact)
    return {key: sum(v) / len(v) for key, v in cells.items()}


def paired_difference(out: Path, method: str, other: str, seeds: tuple[int, ...], protocol: str,
                      hard_levels: tuple[int, ...]) -> dict:
    """Held-out hard accuracy of ``method`` minus ``other``'s, paired: by problem with one seed (bootstrap
    interval over problems), by seed with several (t-interval over seeds, as ``bench/sample_efficiency.py``)."""
    from .metrics import across_seeds, bootstrap_ci

    def per_problem(label):
        scores: dict[str, list[bool]] = {}
        for row in _samples(out / "eval" / label / protocol):
            if row["difficulty"] in hard_levels:
                scores.setdefault(row["problem_id"], []).append(bool(row["correct"]))
        return {pid: sum(v) / len(v) for pid, v in scores.items()}

    per_seed = []
    for seed in seeds:
        ours, theirs = per_problem(_model_label(method, seed, seeds)), per_problem(_model_label(other, seed, seeds))
        per_seed.append([ours[pid] - theirs[pid] for pid in ours if pid in theirs])
    if len(seeds) == 1:
        diffs = per_seed[0]
        lo, hi = bootstrap_ci(diffs) if diffs else (None, None)
        return {"delta": sum(diffs) / len(diffs) if diffs else None, "ci": [lo, hi], "over": "problems",
                "n": len(diffs)}
    mean, half = across_seeds([sum(d) / len(d) for d in per_seed if d])
    return {"delta": mean, "ci": None if half is None else [mean - half, mean + half], "over": "seeds",
            "n": len(seeds)}


def _headline(summary: dict) -> str:
    return "pass@1" if summary["samples"] == 1 else f"avg@{summary['samples']}"


def mine_stage(model: str | Path, pool: Path, levels: tuple[int, ...], k: int, temperature: float,
               max_new_tokens: int, out: Path, progress: bool = True) -> dict:
    """SPARKLE's mining (:func:`scaffoldrl.mining.mine_hard`) of the pool problems of ``levels`` with the local model."""
    from .generation import TransformersBackend
    from .mining import mine_hard

    candidates = [p for p in read_records(pool) if int(p.difficulty or 0) in levels]
    backend = TransformersBackend(str(model))
    try:
        mined = mine_hard(backend, str(model), candidates, out, _protocol("mine", k, temperature, max_new_tokens),
                          name="pool", progress=progress)
    finally:
        backend.close()
    return mined.to_dict()


def _job(out: Path, name: str, threads: int, kind: str, kwargs: dict) -> None:
    """One stage in a worker process (:func:`run_parallel`): its marker is its result."""
    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.set_verbosity_error()
    run = {"train": train_stage, "eval": evaluate_model}[kind]
    Stages(out, log=lambda *_: None).run(name, lambda: run(**kwargs, progress=False))


def run_parallel(out: Path, jobs: list[tuple[str, str, dict]], processes: int, label: str, log=print) -> None:
    """Run the ``(stage, kind, kwargs)`` jobs not finished yet in ``processes`` worker processes (spawned, one
    share of the torch threads each); a later :meth:`Stages.run` of the same stage reads the marker they leave."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch
    from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn

    pending = [job for job in jobs if not (out / "stages" / f"{job[0]}.json").exists()]
    if processes <= 1 or len(pending) <= 1:
        return
    threads = max(1, torch.get_num_threads() // processes)
    log(f"[run] {len(pending)} {label} stages, {processes} at a time ({threads} thread(s) each)")
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool, \
            Progress(*Progress.get_default_columns(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task(label, total=len(pending))
        futures = {pool.submit(_job, out, name, threads, kind, kwargs): name for name, kind, kwargs in pending}
        for future in as_completed(futures):
            future.result()  # a failed stage stops the run; finished stages keep their markers
            bar.advance(task)


def _model_label(method: str, seed: int, seeds: tuple[int, ...]) -> str:
    """A stage-2 model's name: the method, with its seed when there are several (also its folder names)."""
    return method if len(seeds) == 1 else f"{method}_seed{seed}"


def run_demo(out: str | Path, preset_: Preset | str = "default", log=print, progress: bool = True,
             rebuild_base: bool = False) -> dict:
    """The whole demo: base model, stage 1, hard problems, stage 2 per method and seed, evaluation, analysis, report.

    Every step is a resumable stage under ``out`` (markers in ``out/stages``);
    the result (also ``out/summary.json``) holds per model its held-out
    accuracy per difficulty level.
    """
    from .analysis import analyze
    from .generation import TransformersBackend
    from .report import demo_report

    p = preset(preset_) if isinstance(preset_, str) else preset_
    out = Path(out)
    started = time.perf_counter()
    # seeds may grow; base: checked by build_base
    check_settings(out, "preset.json", asdict(p), ignored=("seeds", "name", "base", "jobs"))
    stage2_lr = {"learning_rate": p.learning_rate} if p.learning_rate is not None else {}
    base = build_base(out, p.base, log=log, rebuild=rebuild_base)
    stages = Stages(out, log)
    data, models = out / "data", out / "models"
    world = p.base.world()
    test = data / "test.jsonl"

    def make_pool():
        held_out = {q.problem for q in read_records(test)} | {q.problem for q in read_records(data / "train.jsonl")}
        pool = domain.generate(p.pool_per_level, domain.LEVELS, seed=p.base.seed, world=world, split="rl",
                               exclude=held_out)
        write_records(pool, data / "pool.jsonl")
        return {"pool": len(pool), "per_level": p.pool_per_level}

    stages.run("pool", make_pool)
    stage1 = demo_recipe("sparkle_stage1", models / "base", data / "pool.jsonl", models / "stage1", p.stage1_steps,
                         {"seed": p.base.seed, "max_completion_length": p.max_new_tokens, **p.stage1})
    results = {"stage1": stages.run("stage1", lambda: train_stage(stage1, "stage 1 (sparkle_stage1)", progress))}
    mine_temperature = stage1.config.get("temperature", 0.6)
    mining = stages.run("mine", lambda: mine_stage(models / "stage1", data / "pool.jsonl", p.mine_levels, p.mine_k,
                                                   mine_temperature, p.max_new_tokens, out / "mine", progress))["result"]
    if mining["hard"] == 0:
        raise RuntimeError(f"no hard problems: the stage-1 model solved a sample of every candidate ({mining})")

    trained = {"base": str(models / "base"), "stage1": str(models / "stage1")}
    recipes = {}
    for seed in p.seeds:
        for method in p.methods:
            label = _model_label(method, seed, p.seeds)
            overrides = {"seed": seed, "per_device_train_batch_size": p.stage2_groups * p.group,
                         "gradient_accumulation_steps": 1, **stage2_lr}
            if method != "sft":
                overrides |= {"num_generations": p.group, "max_completion_length": p.max_new_tokens, **p.stage2}
            recipes[label] = demo_recipe(STAGE2[method], models / "stage1", mining["records"],
                                         models / f"stage2_{label}", p.stage2_steps, overrides)
    run_parallel(out, [(f"stage2_{label}", "train", {"recipe": r, "label": label}) for label, r in recipes.items()],
                 p.jobs, "stage 2", log)
    for label, recipe in recipes.items():
        results[f"stage2_{label}"] = stages.run(
            f"stage2_{label}", lambda: train_stage(recipe, f"stage 2 {label} ({recipe.name})", progress))
        trained[label] = str(models / f"stage2_{label}")

    references = {q.id: q.steps for q in read_records(test)}
    protocols = [_protocol("greedy", 0, 0.0, p.max_new_tokens)]
    if p.eval_samples:
        protocols.append(_protocol(f"avg{p.eval_samples}", p.eval_samples, p.eval_temperature, p.max_new_tokens))
    run_parallel(out, [(f"eval_{label}_{protocol.name}", "eval",
                        {"model": path, "records": test, "protocol": protocol,
                         "out": out / "eval" / label / protocol.name, "hard_levels": p.mine_levels})
                       for label, path in trained.items() for protocol in protocols], p.jobs, "evaluation", log)
    evaluations: dict[str, dict] = {}
    for label, path in trained.items():
        for protocol in protocols:
            folder = out / "eval" / label / protocol.name
            evaluations.setdefault(label, {})[protocol.name] = stages.run(
                f"eval_{label}_{protocol.name}",
                lambda: evaluate_model(path, test, protocol, folder, p.mine_levels, progress))["result"] | {
                "exact": exact_steps(folder, references, p.mine_levels)}

    versus = {method: {protocol.name: paired_difference(out, method, "grpo", p.seeds, protocol.name, p.mine_levels)
                       for protocol in protocols} for method in p.methods if method != "grpo" and "grpo" in p.methods}

    def hard_score(label):  # the headline: greedy accuracy on the held-out hard levels
        return evaluations[label]["greedy"]["hard"] or 0.0

    means = {m: sum(hard_score(_model_label(m, s, p.seeds)) for s in p.seeds) / len(p.seeds) for m in p.methods}
    best = max(means, key=means.get)
    analysed = ["base", "stage1", _model_label(best, p.seeds[0], p.seeds)]
    analyses = {}
    for label in analysed:
        def run_analysis(label=label):
            backend = TransformersBackend(trained[label])
            try:
                result = analyze(backend, trained[label], str(test), protocols[0], out / "analysis" / label,
                                 conditions=p.analysis_conditions, limit=p.analysis_limit, progress=progress)
            finally:
                backend.close()
            result.pop("_run", None)
            return result
        analyses[label] = stages.run(f"analysis_{label}", run_analysis)["result"]

    summary = {
        "preset": asdict(p), "seeds": list(p.seeds), "methods": {m: STAGE2[m] for m in p.methods},
        "base_hint_table": base["hint_table"], "mining": mining, "best_stage2": best,
        "models": {label: {"path": trained[label], **{name: ev for name, ev in evaluations[label].items()}}
                   for label in trained},
        "versus_grpo": versus,
        "stage2": _stage2_summary(results, p), "stage1": _training_summary(results["stage1"]["result"]),
        "analysis": analyses,
        "stage_seconds": _marker_seconds(out), "base_seconds": sum(base["stage_seconds"].values()),
    }
    summary["wall_seconds_this_run"] = time.perf_counter() - started
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    demo_report(summary, out)
    log(f"report: {out / 'report.md'} and {out / 'report.html'}; summary: {out / 'summary.json'}")
    return summary


def _marker_seconds(out: Path) -> dict[str, float]:
    paths = sorted((out / "stages").glob("*.json"), key=lambda path: path.stat().st_mtime)  # pipeline order
    return {path.stem: json.loads(path.read_text())["seconds"] for path in paths}


def _series(logs: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(log["step"], log[key]) for log in logs if key in log]
    return [s for s, _ in points], [v for _, v in points]


WARM_UP_FRACTION = 0.1
"""The first tenth of a stage's steps, left out of the ``*_after_warm_up`` means: SEELE's first rates are set
before its per-question fits have data."""


def _training_summary(result: dict) -> dict:
    """Per-step curves and their means from a training stage's log."""
    import statistics

    logs = result["logs"]
    curves = {name: _series(logs, key) for name, key in (
        ("accuracy", "hint/mean_accuracy"), ("hint_rate", "hint/mean_rate"), ("reward", "reward"),
        ("zero_variance", "frac_reward_zero_std"), ("step_seconds", "step_time"))}
    rounds = sorted(int(k[len("hint/accuracy_round"):]) for k in (logs[0] if logs else {})
                    if k.startswith("hint/accuracy_round"))
    for r in rounds:
        curves[f"accuracy_round{r}"] = _series(logs, f"hint/accuracy_round{r}")
    mean = lambda name: statistics.fmean(curves[name][1]) if curves[name][1] else None  # noqa: E731
    target = result.get("target") or 0.5
    accuracy = curves["accuracy"][1]
    gaps = [abs(a - target) for a in accuracy]
    warm = WARM_UP_FRACTION * len(accuracy)
    after = [a for i, a in enumerate(accuracy) if i >= warm]
    fmean = lambda values: statistics.fmean(values) if values else None  # noqa: E731
    return {key: result[key] for key in ("steps", "rollouts", "group", "groups_per_step", "temperature",
                                         "learning_rate", "method", "target") if key in result} | {
        "mean_accuracy": mean("accuracy"), "mean_hint_rate": mean("hint_rate"),
        "zero_variance_frac": mean("zero_variance"), "mean_target_gap": fmean(gaps),
        "accuracy_after_warm_up": fmean(after),
        "target_gap_after_warm_up": fmean([abs(a - target) for a in after]), "curves": curves}


def _stage2_summary(results: dict, p: Preset) -> dict:
    out = {}
    for method in p.methods:
        for seed in p.seeds:
            stage = results[f"stage2_{_model_label(method, seed, p.seeds)}"]
            out.setdefault(method, {})[str(seed)] = _training_summary(stage["result"]) | {"seconds": stage["seconds"]}
    return out
