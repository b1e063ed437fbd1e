"""The ``scaffoldrl`` command line. Commands stay thin: their logic lives in the library."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import typer
from typer.core import TyperGroup

from .domain import HIDDEN_LEVELS, VALUES
from .records import InputError

FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
"""Errors opening a path the user named."""
TRACEBACK_ENV = "SCAFFOLDRL_TRACEBACK"
"""Set to 1 to get the traceback of an input error instead of its one line."""


def user_error_line(error: BaseException) -> str:
    """An input error as the one line the command line prints: file, row and field when it has them."""
    if isinstance(error, OSError) and error.filename and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return " ".join(str(error).split())


class _UserErrors(TyperGroup):
    """Every command's input errors (bad rows, files, settings) end as one line and exit code 1, no traceback.

    One place for every command, sub-commands (``data``, ``export``) included: they run inside this
    group's ``invoke``. Other exceptions are bugs and keep their traceback.
    """

    def invoke(self, ctx):
        """Run the command; an :class:`~scaffoldrl.records.InputError` or a file error becomes one line."""
        try:
            return super().invoke(ctx)
        except (InputError, *FILE_ERRORS) as e:
            if os.environ.get(TRACEBACK_ENV):
                raise
            typer.echo(f"Error: {user_error_line(e)}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(cls=_UserErrors, no_args_is_help=True,
                  help="RL of reasoning language models with hint scaffolding (SPARKLE, SEELE) on TRL.")
_SKIP_INVALID = typer.Option(False, "--skip-invalid", help="Skip bad rows (counted) instead of stopping at the first.")


def _echo_skipped(rows, what: str = "rows") -> None:
    """Say how many bad rows a read skipped, and the first one's error."""
    skipped = getattr(rows, "skipped", None)
    if skipped:
        typer.echo(f"skipped {len(skipped)} bad {what}; first: {skipped[0]}")


@app.callback()
def main() -> None:
    """RL of reasoning language models with hint scaffolding (SPARKLE, SEELE) on TRL."""
    # A callback keeps `scaffoldrl <command>` a command group even while it has a single command.


_EXTRACTION = typer.Option(None, help="Answer extraction: default (every rule, then math-verify's own) or strict "
                           "(answer tags and boxes only). Unset: $SCAFFOLDRL_GRADER_EXTRACTION, else default.")


@app.command()
def grade(
    input: Path = typer.Option(..., "--input", "-i", exists=True, dir_okay=False, help="JSONL of completions (e.g. vLLM outputs)."),
    output: Path = typer.Option(..., "--output", "-o", dir_okay=False, help="JSONL to write: each input row plus correct, extracted, status, rule."),
    completion_key: str = typer.Option("completion", help="Column holding the completion text."),
    answer_key: str = typer.Option("answer", help="Column holding the gold answer."),
    workers: int = typer.Option(2, min=1, help="math-verify worker processes."),
    timeout: float = typer.Option(5.0, min=0.1, help="Hard per-item deadline in seconds."),
    timeout_as_none: bool = typer.Option(False, help="Write correct=null (not false) for items past the deadline."),
    last_number: bool = typer.Option(False, help="Fall back to the last number when no answer is marked."),
    extraction: str = _EXTRACTION,
    skip_invalid: bool = _SKIP_INVALID,
):
    """Grade a file of completions against gold answers with the training grader."""
    import json
    import tempfile

    from .records import read_rows
    from .verify import grade_file, shared_settings_grader

    rows = read_rows(input, required=(completion_key, answer_key), skip_invalid=skip_invalid)
    _echo_skipped(rows)
    with tempfile.TemporaryDirectory() as tmp, shared_settings_grader(
            workers=workers, timeout=timeout, timeout_as_none=timeout_as_none, fallback_last_number=last_number,
            extraction=extraction) as grader:
        source = input
        if rows.skipped:  # grade the valid rows only
            source = Path(tmp) / "valid.jsonl"
            source.write_text("".join(json.dumps(row) + "\n" for row in rows))
        summary = grade_file(source, output, completion_key, answer_key, grader=grader)
    typer.echo(f"graded {summary['rows']} rows -> {output}")
    typer.echo(f"accuracy {summary['accuracy']:.4f} ({summary['correct']}/{summary['rows']}); "
               f"no answer {summary['no_answer']}, timeouts {summary['timeout']}, errors {summary['error']}")


data_app = typer.Typer(help="Build and transform problem records and training rows.")
app.add_typer(data_app, name="data")


def _tokenizer(name: str | None):
    """The tokenizer at a path or hub name, or None: row builders then cannot measure prompt lengths."""
    if not name:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def _check_references(method, problems, where) -> None:
    """Records without reference steps, given to a method that hints with them, are a bad input, not plain rows."""
    from .methods import MissingReference, check_references

    try:
        check_references(method, problems, where)
    except MissingReference as e:
        raise typer.BadParameter(str(e)) from None


def _fields(pairs: list[str]) -> dict[str, str]:
    """``--field OURS=THEIRS`` options as a mapping."""
    if any("=" not in f for f in pairs):
        raise typer.BadParameter("expected OURS=THEIRS", param_hint="--field")
    return dict(f.split("=", 1) for f in pairs)


def _echo_length_check(checked: bool, dropped: int, max_prompt_tokens: int, engine: str) -> None:
    if checked:
        typer.echo(f"dropped {dropped} rows over {max_prompt_tokens} prompt tokens")
    else:
        typer.echo(f"prompt lengths not checked (no --tokenizer): {engine} may drop or truncate long rows")


@data_app.command("augment")
def data_augment(
    records: Path = typer.Argument(..., help="Problem records (.jsonl, .json, .parquet or a dataset folder)."),
    out: Path = typer.Argument(..., help="Training rows to write (.jsonl or .parquet)."),
    levels: int = typer.Option(4, help="K: hint levels added to each plain row (SPARKLE: 4)."),
    hide_final_step: bool = typer.Option(False, help="Never reveal the final step (SPARKLE reveals it at level K)."),
    resplit: bool = typer.Option(True, help="Re-split solutions with fewer steps than needed (off for exact steps)."),
    tokenizer: str = typer.Option(None, help="Tokenizer path or name; needed to drop over-long rows."),
    max_prompt_tokens: int = typer.Option(1024, help="Prompt limit in tokens (SPARKLE: 1024)."),
    skip_invalid: bool = _SKIP_INVALID,
):
    """Write SPARKLE's stage-2 rows: each problem plain and with its first 1..K solution chunks in the prompt."""
    from collections import Counter

    from .methods.sparkle import PSSConfig, SparklePSS
    from .records import read_records

    problems = read_records(records, skip_invalid=skip_invalid)
    _echo_skipped(problems)
    config = PSSConfig(levels=levels, hide_final_step=hide_final_step, resplit=resplit)
    _check_references(SparklePSS, problems, records)
    tok = _tokenizer(tokenizer)
    rowset = SparklePSS(config).rows(problems, tokenizer=tok, max_prompt_tokens=max_prompt_tokens)
    rowset.write(out)
    per_level = Counter(r.level for r in rowset.rows)
    typer.echo(f"{out}: {len(rowset.rows)} rows from {len(problems)} problems; "
               f"rows per level {dict(sorted(per_level.items()))}; final step "
               f"{'hidden' if hide_final_step else 'revealed at the top level'}")
    _echo_length_check(rowset.checked, len(rowset.dropped), max_prompt_tokens, "the engine")


@data_app.command("synth")
def data_synth(
    out: Path = typer.Argument(..., help="Records file to write (.jsonl, .parquet, or a folder for a saved dataset)."),
    n: int = typer.Option(100, min=1, help="Problems per level."),
    levels: str = typer.Option("1,2,3,4,5", help="Comma-separated difficulty levels (1 easiest, 5 hardest)."),
    seed: int = typer.Option(0, help="Problem seed; the same seed and split give the same problems."),
    split: str = typer.Option("train", help="Split name, mixed into the seed (train, test, ...)."),
    world_seed: int = typer.Option(0, help="Which world of function tables (the domain's 'knowledge')."),
    world_values: int = typer.Option(VALUES, min=2, help="Size of the function tables (values 0..N-1): a guess is right 1 in N."),
    exclude: Path = typer.Option(None, exists=True, help="Records whose problems must not be repeated (e.g. a train split)."),
    skip_invalid: bool = _SKIP_INVALID,
):
    """Write embedded-domain problems with steps, plan, knowledge and subproblem chains."""
    from . import domain
    from .records import read_records, write_records

    try:
        wanted = tuple(int(x) for x in levels.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated integers, got {levels!r}", param_hint="--levels") from None
    excluded = read_records(exclude, skip_invalid=skip_invalid) if exclude else None
    _echo_skipped(excluded, "rows of --exclude")
    seen = {p.problem for p in excluded} if exclude else None
    problems = domain.generate(n, wanted, seed=seed, world=domain.World(seed=world_seed, values=world_values),
                               split=split, exclude=seen)
    write_records(problems, out)
    typer.echo(f"{out}: {len(problems)} problems, levels {list(wanted)}")


@data_app.command("prepare")
def data_prepare(
    input: Path = typer.Argument(..., exists=True, help="A dataset file: .jsonl, .json, .parquet, or a save_to_disk folder."),
    out: Path = typer.Argument(..., help="Records to write (.jsonl, .parquet, or a folder for a saved dataset)."),
    field: list[str] = typer.Option([], help="OURS=THEIRS column mapping (id, problem, answer, solution, difficulty, subject); repeatable."),
    source: str = typer.Option(None, help="The records' source name, also the ids of rows without an id (default: the file name)."),
    skip_invalid: bool = typer.Option(False, help="Skip bad rows (counted, the first few shown) instead of stopping at the first."),
):
    """Records from your dataset: mapped columns, the solution split into steps, answers checked; prints the steps histogram."""
    from .prepare import prepare
    from .records import RecordError

    try:
        result = prepare(input, out, _fields(field), source=source, skip_invalid=skip_invalid)
    except ValueError as e:  # a RecordError names the file, row and column; an unknown field in the mapping
        raise typer.BadParameter(str(e), param_hint="INPUT" if isinstance(e, RecordError) else "--field") from None
    for line in result.report():
        typer.echo(line)


export_app = typer.Typer(help="Hand our data, rewards and benchmarks to the tools users train and evaluate with.")
app.add_typer(export_app, name="export")


def _records_or_benchmark(spec: str, skip_invalid: bool = False):
    """Problems from a records file, or a built-in benchmark by name (e.g. a validation set)."""
    from .benchmarks import BENCHMARKS, load_benchmark
    from .records import read_records

    if not Path(spec).exists() and spec in BENCHMARKS:
        return spec, load_benchmark(spec)[1]
    if not Path(spec).exists():
        raise InputError(f"--records: no file {spec!r} (nor a benchmark: {', '.join(BENCHMARKS)})")
    problems = read_records(spec, skip_invalid=skip_invalid)
    _echo_skipped(problems)
    return Path(spec).stem, list(problems)


@export_app.command("verl")
def export_verl(
    records: str = typer.Option(..., "--records", "-r", help="Problem records (.jsonl, .json, .parquet, dataset folder) or a benchmark name."),
    method: str = typer.Option("grpo", help="grpo: one plain row per problem; pss: SPARKLE's plain row plus one row per hint level."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder: SPLIT.parquet (veRL rows) and SPLIT.json (counts, dropped rows)."),
    tokenizer: str = typer.Option(None, "--tokenizer", "--model", help="Tokenizer (or model) path or name: prompt lengths are measured with it."),
    max_prompt_tokens: int = typer.Option(1024, min=1, help="Rows whose prompt is longer (through the chat template) are dropped and counted."),
    levels: int = typer.Option(4, min=1, help="pss: K hint levels per problem (SPARKLE: 4)."),
    hide_final_step: bool = typer.Option(False, help="pss: never reveal the final step (SPARKLE reveals it at level K)."),
    resplit: bool = typer.Option(True, help="pss: re-split solutions with fewer steps than needed (off for exact steps)."),
    reward: str = typer.Option(None, help="binary, sparkle or sparkle_aug, written to extra_info (default: sparkle_aug for pss, else sparkle)."),
    data_source: str = typer.Option(None, help="The rows' data_source (default: the records' name)."),
    split: str = typer.Option("train", help="Split name: the file name and extra_info.split."),
    skip_invalid: bool = _SKIP_INVALID,
):
    """Write veRL Parquet rows with SPARKLE's prompt (and PSS hint levels), for custom_reward_function pkg://scaffoldrl.integrations.verl."""
    from .integrations.verl import METHODS, export_verl as run_export
    from .methods.sparkle import PSSConfig

    if method not in METHODS:
        raise typer.BadParameter(f"expected one of {', '.join(METHODS)}", param_hint="--method")
    name, problems = _records_or_benchmark(records, skip_invalid)
    tok = _tokenizer(tokenizer)
    try:
        result = run_export(problems, out, method=method, tokenizer=tok, max_prompt_tokens=max_prompt_tokens,
                            pss=PSSConfig(levels=levels, hide_final_step=hide_final_step, resplit=resplit),
                            data_source=data_source or name, reward=reward, split=split, where=records)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(f"{result.path}: wrote {result.rows} rows from {result.problems} problems "
               f"(reward {result.settings['reward']}, data_source {result.settings['data_source']})")
    if method == "pss":
        typer.echo(f"rows per thinking_level {result.per_level}; final step "
                   f"{'hidden' if hide_final_step else 'revealed at the top level'}")
    _echo_length_check(result.checked, len(result.dropped), max_prompt_tokens, "veRL")


@export_app.command("lm-eval")
def export_lm_eval(
    out: Path = typer.Option(..., "--out", "-o", help="Folder for lm_eval --include_path: task YAMLs, utils.py, data/."),
    protocols: str = typer.Option("sparkle,seele,greedy", help="Comma-separated presets or protocol YAML files."),
    benchmarks: str = typer.Option(None, help="Comma-separated benchmarks or NAME=PATH (default: every built-in one)."),
    field: list[str] = typer.Option([], help="For NAME=PATH benchmarks: OURS=THEIRS column mapping; repeatable."),
    extraction: str = _EXTRACTION,
):
    """Write our benchmarks and protocols as lm-evaluation-harness tasks (avg@k via repeats), graded by our grader."""
    from .integrations.lm_eval import export_lm_eval as run_export

    if any("=" not in f for f in field):
        raise typer.BadParameter("expected OURS=THEIRS", param_hint="--field")
    result = run_export(out, [p for p in protocols.split(",") if p.strip()],
                        [b for b in benchmarks.split(",") if b.strip()] if benchmarks else None,
                        dict(f.split("=", 1) for f in field), extraction=extraction)
    for protocol, tasks in result["tasks"].items():
        typer.echo(f"group {'scaffoldrl_' + protocol}: {len(tasks)} tasks ({', '.join(tasks)})")
    typer.echo(f"data: {sum(result['data'].values())} rows in {len(result['data'])} files under {out / 'data'}")
    typer.echo(f"run: lm_eval --model hf --model_args pretrained=MODEL --tasks scaffoldrl_sparkle "
               f"--include_path {out} --apply_chat_template")


@app.command()
def sft(
    model: Path = typer.Option(..., "--model", "-m", exists=True, file_okay=False, help="Model folder to start from."),
    data: Path = typer.Option(..., "--data", "-d", exists=True, help="Problem records with reference steps."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the fine-tuned model."),
    epochs: float = typer.Option(2.0, min=0.01),
    learning_rate: float = typer.Option(2e-3, "--lr"),
    batch_size: int = typer.Option(32, min=1),
    skip_invalid: bool = _SKIP_INVALID,
):
    """Supervised fine-tuning on reference solutions (response-only loss) with TRL's SFTTrainer."""
    from .records import read_records
    from .sft import SFTSettings, run_sft

    problems = read_records(data, skip_invalid=skip_invalid)
    _echo_skipped(problems)
    run_sft(model, problems, out, SFTSettings(epochs=epochs, learning_rate=learning_rate, batch_size=batch_size))
    typer.echo(f"model saved to {out}")


@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", "-o", help="Run folder; a rerun resumes finished stages."),
    preset: str = typer.Option("default", help="default (about 5 min on 2 CPU cores), full (5 seeds, longer "
                                               "stage 2: the preregistered study, about an hour), or smoke "
                                               "(seconds; tests)."),
    seeds: str = typer.Option(None, help="Comma-separated stage-2 seeds instead of the preset's."),
    lr: float = typer.Option(None, help="Learning rate of every stage-2 arm (default: the preset's, 3e-4)."),
    base_only: bool = typer.Option(False, help="Stop after the base model and its hint table."),
    rebuild_base: bool = typer.Option(False, help="Build the base model from scratch (minutes) instead of starting "
                                                  "from the shipped one, which the default settings use."),
    threads: int = typer.Option(None, min=1, help="Torch CPU threads (default: torch's; 1 is fastest on a shared machine)."),
    jobs: int = typer.Option(None, min=1, help="Stage-2 runs and evaluations at once, one process each, sharing "
                                               "the threads (default: the preset's)."),
):
    """The embedded pipeline on a CPU: base model, SPARKLE stage 1, hard problems, stage 2 (GRPO, PSS, SEELE, UFT)
    at equal rollouts, held-out evaluation, SPARKLE's analysis, and a report."""
    import dataclasses

    import datasets
    import transformers
    from rich.console import Console

    from .base_model import build_base
    from .demo import PRESETS, preset as get_preset, run_demo
    from .report import base_console_table, demo_console

    if preset not in PRESETS:
        raise typer.BadParameter(f"expected one of {', '.join(PRESETS)}", param_hint="--preset")
    if threads:
        import torch

        torch.set_num_threads(threads)
    datasets.disable_progress_bars()  # one bar per training stage is enough
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    console = Console()
    chosen = get_preset(preset)
    if seeds:
        chosen = dataclasses.replace(chosen, seeds=tuple(int(s) for s in seeds.split(",") if s.strip()))
    if lr is not None:
        chosen = dataclasses.replace(chosen, learning_rate=lr)
    if jobs is not None:
        chosen = dataclasses.replace(chosen, jobs=jobs)
    base = build_base(out, chosen.base, log=console.print, rebuild=rebuild_base)
    console.print(base_console_table(base["hint_table"], chosen.base.test_per_level, chosen.base.world_candidates,
                                     HIDDEN_LEVELS))
    if base_only:
        times = ", ".join(f"{k} {v:.0f}s" for k, v in base["stage_seconds"].items())
        console.print(f"stage times: {times}; results in {out}/base.json")
        return
    result = run_demo(out, chosen, log=console.print, rebuild_base=rebuild_base)
    for renderable in demo_console(result):
        console.print(renderable)
    console.print(f"report: {out / 'report.md'}")


def _backend_options(model: str, backend: str, base_url: str | None, tokenizer: str | None, concurrency: int):
    from .generation import BackendUnavailable, load_backend

    try:
        return load_backend(model, backend, base_url, tokenizer, concurrency)
    except BackendUnavailable as e:
        raise typer.BadParameter(str(e), param_hint="--backend") from None


_MODEL = typer.Option(..., "--model", "-m", help="Model folder (or the served model's name with --base-url).")
_BACKEND = typer.Option("auto", help="auto, transformers, vllm or openai (auto: openai with --base-url, vllm if installed on a GPU).")
_BASE_URL = typer.Option(None, "--base-url", help="An OpenAI-compatible server, e.g. http://localhost:8000/v1.")
_TOKENIZER = typer.Option(None, help="Tokenizer folder to render prompts for a server (default: --model if it is a folder).")
_PROTOCOL = typer.Option("sparkle", help="Preset (sparkle, seele, greedy) or a protocol YAML file.")
_LIMIT = typer.Option(None, min=1, help="Only N problems per benchmark, spread evenly over it (a quick look).")
_MAX_NEW = typer.Option(None, min=1, help="Response token limit (default: the protocol's).")
_BATCH = typer.Option(64, min=1, help="Samples generated, graded and saved together.")
_CONCURRENCY = typer.Option(8, min=1, help="Requests in flight to a server.")


@app.command("eval")
def eval_(
    model: str = _MODEL,
    benchmarks: str = typer.Option("math500,gsm8k", help="Comma-separated: math500, gsm8k, aime24, amc23, minerva_math, olympiadbench, synth, or NAME=PATH."),
    protocol: str = _PROTOCOL,
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: samples.jsonl, summary.json, report; rerun to resume."),
    base_url: str = _BASE_URL,
    backend: str = _BACKEND,
    tokenizer: str = _TOKENIZER,
    field: list[str] = typer.Option([], help="For NAME=PATH benchmarks: OURS=THEIRS column mapping (id, problem, answer, solution, difficulty, subject); repeatable."),
    limit: int = _LIMIT,
    max_new_tokens: int = _MAX_NEW,
    batch_size: int = _BATCH,
    concurrency: int = _CONCURRENCY,
    extraction: str = _EXTRACTION,
    skip_invalid: bool = _SKIP_INVALID,
):
    """Evaluate a model on benchmarks (avg@k, pass@k, maj@k with bootstrap intervals); resumable."""
    from .evaluate import Protocol, evaluate
    from .verify import shared_settings_grader

    if any("=" not in f for f in field):
        raise typer.BadParameter("expected OURS=THEIRS", param_hint="--field")
    generator = _backend_options(model, backend, base_url, tokenizer, concurrency)
    grader = shared_settings_grader(extraction=extraction)
    try:
        summary = evaluate(generator, model, [b for b in benchmarks.split(",") if b.strip()],
                           Protocol.load(protocol), out, limit=limit,
                           field_map=dict(f.split("=", 1) for f in field),
                           max_new_tokens=max_new_tokens, batch_size=batch_size, grader=grader,
                           skip_invalid=skip_invalid)
    finally:
        generator.close()
        grader.close()
    run = summary.pop("_run")
    for name, count in run["skipped"].items():
        if count:
            typer.echo(f"{name}: skipped {count} bad rows")
    typer.echo(f"{out}: generated {run['generated']} samples, reused {run['reused']} from earlier runs")
    for name, s in summary.items():
        lo, hi = s["ci"]["pass@1" if s["samples"] == 1 else f"avg@{s['samples']}"]
        typer.echo(f"{name:>16}: score {100 * s['score']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] "
                   f"({s['problems']} problems x {s['samples']} samples)")
    typer.echo(f"report: {out / 'report.md'}")


@app.command()
def analyze(
    model: str = _MODEL,
    data: str = typer.Option("synth", help="Annotated problems: synth, gsm8k_socratic, or a file (sparkle_preview schema or scaffoldrl records)."),
    protocol: str = _PROTOCOL,
    out: Path = typer.Option(..., "--out", "-o", help="Run folder: samples.jsonl, analysis.json, report; rerun to resume."),
    conditions: str = typer.Option("plain,plan,knowledge,chain", help="Comma-separated subset of plain, plan, knowledge, chain."),
    base_url: str = _BASE_URL,
    backend: str = _BACKEND,
    tokenizer: str = _TOKENIZER,
    limit: int = _LIMIT,
    max_new_tokens: int = _MAX_NEW,
    batch_size: int = _BATCH,
    concurrency: int = _CONCURRENCY,
    skip_invalid: bool = _SKIP_INVALID,
):
    """SPARKLE's fine-grained analysis: accuracy with plans, knowledge and subproblem chains, per difficulty level."""
    from .analysis import analyze as run_analysis
    from .evaluate import Protocol

    generator = _backend_options(model, backend, base_url, tokenizer, concurrency)
    try:
        result = run_analysis(generator, model, data, Protocol.load(protocol), out,
                              conditions=[c for c in conditions.split(",") if c.strip()], limit=limit,
                              max_new_tokens=max_new_tokens, batch_size=batch_size, skip_invalid=skip_invalid)
    finally:
        generator.close()
    if result["_run"]["skipped"]:
        typer.echo(f"skipped {result['_run']['skipped']} bad rows of {data}")
    typer.echo(f"{out}: generated {result['_run']['generated']} samples")
    for c, s in result["conditions"].items():
        d = result["deltas"].get(c)
        delta = f", delta vs plain {100 * d['delta']:+.1f}" if d and d["delta"] is not None else ""
        typer.echo(f"{c:>10}: {100 * s['score']:.1f}{delta} ({s['problems']} problems x {s['samples']} samples)")
    typer.echo(f"report: {out / 'report.md'}")


@app.command()
def train(
    recipe: str = typer.Option(..., "--recipe", "-r", help="A recipe shipped with the package (see `scaffoldrl recipes`) or a YAML file."),
    variant: str = typer.Option("tiny", help="Recipe variant: 'tiny' (runs on a CPU) or 'paper' (multi-GPU, vLLM)."),
    model: str = typer.Option(None, help="Model path or name instead of the recipe's."),
    output_dir: str = typer.Option(None, help="Where checkpoints and the final model go (default runs/NAME-VARIANT)."),
    max_steps: int = typer.Option(None, help="Stop after this many optimizer steps."),
    resume: str = typer.Option(None, help="Checkpoint folder to resume from (the method's state included)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config field: KEY=VALUE (YAML value); repeatable."),
    launch: bool = typer.Option(False, help="Rerun this command under `accelerate launch` with the recipe's config."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Skip bad rows (counted) of the recipe's records "
                                                                     "file instead of stopping at the first."),
):
    """Train with a recipe: GRPO with hint scaffolding (grpo, sparkle_stage1, sparkle_stage2_aug, seele), a baseline
    (uft, luffy, prefix_rft) or SFT."""
    import dataclasses
    import subprocess
    import sys

    from .recipes import launch_command, load_recipe, parse_overrides, run_recipe

    overrides = parse_overrides(set_)
    for key, value in (("model", model), ("output_dir", output_dir), ("max_steps", max_steps),
                       ("resume_from_checkpoint", resume)):
        if value is not None:
            overrides[key] = value
    loaded = dataclasses.replace(load_recipe(recipe, variant, overrides), skip_invalid=skip_invalid)
    if launch:
        command = launch_command(loaded, [a for a in sys.argv[1:] if a != "--launch"])
        typer.echo(" ".join(command))
        raise typer.Exit(subprocess.call(command))
    typer.echo(f"recipe {loaded.name} ({loaded.variant}): {loaded.trainer} on {loaded.model}")
    out = run_recipe(loaded)
    typer.echo(f"model saved to {out}")


@app.command("recipes")
def recipes_() -> None:
    """List the recipes shipped with the package: name, method and what each reproduces."""
    import yaml

    from .recipes import RECIPE_DIR, recipe_names

    for name in recipe_names():
        raw = yaml.safe_load((RECIPE_DIR / f"{name}.yaml").read_text())
        method = raw.get("config", {}).get("method", raw.get("trainer", "grpo"))
        typer.echo(f"{name:<20} {method:<11} {' '.join(str(raw.get('description', '')).split())[:100]}")


@data_app.command("mine")
def data_mine(
    records: Path = typer.Argument(..., exists=True, help="Problem records (e.g. from `data prepare`), or a dataset file with --field."),
    out: Path = typer.Argument(..., help="Run folder: samples.jsonl, pass_counts.jsonl, hard.jsonl, mine.json; rerun to resume."),
    model: str = _MODEL,
    k: int = typer.Option(None, min=1, help="Samples per problem (default: the protocol's; sparkle: 8)."),
    temperature: float = typer.Option(None, min=0.0, help="Sampling temperature (default: the protocol's; sparkle: 0.6)."),
    top_p: float = typer.Option(None, help="Top-p (default: the protocol's; sparkle: 1.0)."),
    max_correct: int = typer.Option(0, min=0, help="Keep problems with at most this many right samples (0: pass@k = 0, SPARKLE's)."),
    protocol: str = typer.Option("sparkle", help="Prompt, seed and default sampling: a preset (sparkle, seele, greedy) or a protocol YAML file."),
    hard: Path = typer.Option(None, help="Where the hard records go (default OUT/hard.jsonl; .parquet or a folder also work)."),
    counts: Path = typer.Option(None, help="Per-problem pass counts (default OUT/pass_counts.jsonl; a .csv path writes CSV)."),
    field: list[str] = typer.Option([], help="OURS=THEIRS column mapping for a dataset file (as in `data prepare`); repeatable."),
    base_url: str = _BASE_URL,
    backend: str = _BACKEND,
    tokenizer: str = _TOKENIZER,
    limit: int = typer.Option(None, min=1, help="Only N problems, spread evenly over the file (a quick look)."),
    max_new_tokens: int = typer.Option(None, min=1, help="Response token limit (default: the protocol's; sparkle: 3000)."),
    batch_size: int = _BATCH,
    concurrency: int = _CONCURRENCY,
):
    """SPARKLE's hard-problem mining: sample every problem k times and keep those never solved (pass@k = 0); resumable."""
    from .benchmarks import read_benchmark_file, subset
    from .mining import mine_hard, mining_protocol

    try:
        chosen = mining_protocol(protocol, k, temperature, top_p, max_new_tokens)
        problems = subset(read_benchmark_file(records, _fields(field), records.stem), limit)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e)) from None
    generator = _backend_options(model, backend, base_url, tokenizer, concurrency)
    try:
        mined = mine_hard(generator, model, problems, out, chosen, max_correct=max_correct, records=hard,
                          counts=counts, batch_size=batch_size)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    finally:
        generator.close()
    typer.echo(f"{out}: generated {mined.generated} samples, reused {mined.reused} from earlier runs "
               f"(k = {mined.k} at T = {mined.temperature:g})")
    solved = Counter(row["correct"] for row in mined.counts)
    typer.echo("problems by right samples: " + ", ".join(f"{c}/{mined.k}: {n}" for c, n in sorted(solved.items())))
    typer.echo(f"hard (at most {max_correct} right of {mined.k}): {len(mined.hard)} of {len(mined.counts)} -> "
               f"{mined.records}; pass counts -> {mined.counts_path}")
    for level, cell in mined.by_level.items():
        typer.echo(f"  level {level}: {cell['hard']} of {cell['candidates']} hard")


@data_app.command("annotate")
def data_annotate(
    records: Path = typer.Argument(..., exists=True, help="Problem records (.jsonl, .json, .parquet or a dataset folder)."),
    out: Path = typer.Argument(..., help="Run folder: annotations.jsonl, failures.jsonl, records.jsonl, summary.json; rerun to resume."),
    base_url: str = typer.Option(..., "--base-url", help="An OpenAI-compatible server, e.g. http://localhost:8000/v1."),
    model: str = typer.Option(..., "--model", "-m", help="The served model's name."),
    task: str = typer.Option("steps", help="Comma-separated: steps (SEELE's <= 5 numbered steps), sparkle (plan, knowledge, subproblem chain)."),
    prompt: list[str] = typer.Option([], help="A prompt file replacing the shipped one: FILE (one task) or TASK=FILE; repeatable."),
    retries: int = typer.Option(2, min=0, help="Retries of an output that fails to parse or check, each with a new seed."),
    max_steps: int = typer.Option(5, min=1, help="steps: the most steps a rewritten solution may have (SEELE: 5)."),
    temperature: float = typer.Option(0.6, min=0.0, help="Sampling temperature (above 0, so that a retry can differ)."),
    max_new_tokens: int = typer.Option(2048, min=1, help="Response token limit per request."),
    output: Path = typer.Option(None, "--records-out", help="Where the annotated records go (default OUT/records.jsonl)."),
    keep_failed: bool = typer.Option(False, help="Also write the records a task failed on, with the annotations that succeeded (default: leave them out)."),
    retry_failed: bool = typer.Option(False, help="Ask again for the records an earlier run gave up on."),
    limit: int = typer.Option(None, min=1, help="Only the first N records (a quick look)."),
    batch_size: int = typer.Option(32, min=1, help="Requests sent, checked and saved together."),
    concurrency: int = typer.Option(8, min=1, help="Requests in flight to the server."),
    tokenizer: str = typer.Option(None, help="Tokenizer folder to render prompts here (default: the server's chat template)."),
):
    """Annotate records through an OpenAI-compatible server: SEELE's <= 5-step solutions, SPARKLE's plan / knowledge /
    subproblem chain; every output checked, failures retried, counted and written to failures.jsonl; resumable."""
    from .annotate import TASKS, annotate
    from .generation import BackendUnavailable, OpenAIBackend
    from .records import read_records

    tasks = [t.strip() for t in task.split(",") if t.strip()]
    if not tasks or set(tasks) - set(TASKS):
        raise typer.BadParameter(f"expected a comma-separated subset of {', '.join(TASKS)}", param_hint="--task")
    prompts = {}
    for item in prompt:
        name, sep, path = item.partition("=")
        if not sep:
            if len(tasks) != 1:
                raise typer.BadParameter("with several tasks, give TASK=FILE", param_hint="--prompt")
            name, path = tasks[0], item
        if name not in tasks or not Path(path).is_file():
            raise typer.BadParameter(f"{item!r}: expected TASK=FILE for a task of --task and an existing file",
                                     param_hint="--prompt")
        prompts[name] = path
    problems = list(read_records(records))[:limit]
    tok = None
    if tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
    try:
        generator = OpenAIBackend(base_url, model, tokenizer=tok, concurrency=concurrency)
    except BackendUnavailable as e:
        raise typer.BadParameter(str(e), param_hint="--base-url") from None
    try:
        result = annotate(generator, problems, out, tasks, model=model, prompts=prompts, retries=retries,
                          max_steps=max_steps, temperature=temperature, max_new_tokens=max_new_tokens,
                          batch_size=batch_size, records=output, keep_failed=keep_failed,
                          retry_failed=retry_failed, where=str(records))
    except ValueError as e:  # records without steps for --task steps; a prompt without {problem}
        raise typer.BadParameter(str(e)) from None
    finally:
        generator.close()
    for name, c in result.counts.items():
        why = ", ".join(f"{reason} {n}" for reason, n in result.reasons.get(name, {}).items())
        typer.echo(f"{name}: ok {c['ok']}, failed {c['failed']} of {len(problems)} records "
                   f"({c['requests']} requests now, {c['reused']} records reused)" + (f"; failed attempts: {why}" if why else ""))
    typer.echo(f"{result.path}: {len(result.records)} records written, {result.dropped} left out; "
               f"failures -> {result.failures_path}")
