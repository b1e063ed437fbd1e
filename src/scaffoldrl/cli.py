"""The ``scaffoldrl`` command line. Commands stay thin: their logic lives in the library."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="RL of reasoning language models with hint scaffolding (SPARKLE, SEELE) on TRL.")


@app.callback()
def main() -> None:
    """RL of reasoning language models with hint scaffolding (SPARKLE, SEELE) on TRL."""
    # A callback keeps `scaffoldrl <command>` a command group even while it has a single command.


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
):
    """Grade a file of completions against gold answers with the training grader."""
    from .verify import Grader, grade_file

    with Grader(workers=workers, timeout=timeout, timeout_as_none=timeout_as_none,
                fallback_last_number=last_number) as grader:
        summary = grade_file(input, output, completion_key, answer_key, grader=grader)
    typer.echo(f"graded {summary['rows']} rows -> {output}")
    typer.echo(f"accuracy {summary['accuracy']:.4f} ({summary['correct']}/{summary['rows']}); "
               f"no answer {summary['no_answer']}, timeouts {summary['timeout']}, errors {summary['error']}")


data_app = typer.Typer(help="Build and transform problem records and training rows.")
app.add_typer(data_app, name="data")


@data_app.command("augment")
def data_augment(
    records: Path = typer.Argument(..., help="Problem records (.jsonl, .json, .parquet or a dataset folder)."),
    out: Path = typer.Argument(..., help="Training rows to write (.jsonl or .parquet)."),
    levels: int = typer.Option(4, help="K: hint levels added to each plain row (SPARKLE: 4)."),
    hide_final_step: bool = typer.Option(False, help="Never reveal the final step (SPARKLE reveals it at level K)."),
    resplit: bool = typer.Option(True, help="Re-split solutions with fewer steps than needed (off for exact steps)."),
    tokenizer: str = typer.Option(None, help="Tokenizer path or name; needed to drop over-long rows."),
    max_prompt_tokens: int = typer.Option(1024, help="Prompt limit in tokens (SPARKLE: 1024)."),
):
    """Write SPARKLE's stage-2 rows: each problem plain and with its first 1..K solution chunks in the prompt."""
    from collections import Counter

    from .hints import PSSConfig, SparklePSS
    from .records import read_records

    problems = read_records(records)
    tok = None
    if tokenizer:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(tokenizer)
    config = PSSConfig(levels=levels, hide_final_step=hide_final_step, resplit=resplit)
    rowset = SparklePSS(config).rows(problems, tokenizer=tok, max_prompt_tokens=max_prompt_tokens)
    rowset.write(out)
    per_level = Counter(r.level for r in rowset.rows)
    typer.echo(f"{out}: {len(rowset.rows)} rows from {len(problems)} problems; "
               f"rows per level {dict(sorted(per_level.items()))}; final step "
               f"{'hidden' if hide_final_step else 'revealed at the top level'}")
    if rowset.checked:
        typer.echo(f"dropped {len(rowset.dropped)} rows over {max_prompt_tokens} prompt tokens")
    else:
        typer.echo("prompt lengths not checked (no --tokenizer): the engine may drop or truncate long rows")


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
):
    """Evaluate a model on benchmarks (avg@k, pass@k, maj@k with bootstrap intervals); resumable."""
    from .evaluate import Protocol, evaluate

    if any("=" not in f for f in field):
        raise typer.BadParameter("expected OURS=THEIRS", param_hint="--field")
    summary = evaluate(_backend_options(model, backend, base_url, tokenizer, concurrency), model,
                       [b for b in benchmarks.split(",") if b.strip()], Protocol.load(protocol), out,
                       limit=limit, field_map=dict(f.split("=", 1) for f in field), max_new_tokens=max_new_tokens,
                       batch_size=batch_size)
    run = summary.pop("_run")
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
):
    """SPARKLE's fine-grained analysis: accuracy with plans, knowledge and subproblem chains, per difficulty level."""
    from .analysis import analyze as run_analysis
    from .evaluate import Protocol

    result = run_analysis(_backend_options(model, backend, base_url, tokenizer, concurrency), model, data,
                          Protocol.load(protocol), out, conditions=[c for c in conditions.split(",") if c.strip()],
                          limit=limit, max_new_tokens=max_new_tokens, batch_size=batch_size)
    typer.echo(f"{out}: generated {result['_run']['generated']} samples")
    for c, s in result["conditions"].items():
        d = result["deltas"].get(c)
        delta = f", delta vs plain {100 * d['delta']:+.1f}" if d and d["delta"] is not None else ""
        typer.echo(f"{c:>10}: {100 * s['score']:.1f}{delta} ({s['problems']} problems x {s['samples']} samples)")
    typer.echo(f"report: {out / 'report.md'}")


@app.command()
def train(
    recipe: str = typer.Option(..., "--recipe", "-r", help="Recipe YAML, or the name of one under ./recipes/."),
    variant: str = typer.Option("tiny", help="Recipe variant: 'tiny' (runs on a CPU) or 'paper' (multi-GPU, vLLM)."),
    model: str = typer.Option(None, help="Model path or name instead of the recipe's."),
    output_dir: str = typer.Option(None, help="Where checkpoints and the final model go (default runs/NAME-VARIANT)."),
    max_steps: int = typer.Option(None, help="Stop after this many optimizer steps."),
    resume: str = typer.Option(None, help="Checkpoint folder to resume from (the hint policy's state included)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config field: KEY=VALUE (YAML value); repeatable."),
    launch: bool = typer.Option(False, help="Rerun this command under `accelerate launch` with the recipe's config."),
):
    """Train with a recipe: GRPO with hint scaffolding (grpo, sparkle_stage1, sparkle_stage2_aug, seele) or SFT."""
    import subprocess
    import sys

    from .recipes import launch_command, load_recipe, parse_overrides, run_recipe

    overrides = parse_overrides(set_)
    for key, value in (("model", model), ("output_dir", output_dir), ("max_steps", max_steps),
                       ("resume_from_checkpoint", resume)):
        if value is not None:
            overrides[key] = value
    loaded = load_recipe(recipe, variant, overrides)
    if launch:
        command = launch_command(loaded, [a for a in sys.argv[1:] if a != "--launch"])
        typer.echo(" ".join(command))
        raise typer.Exit(subprocess.call(command))
    typer.echo(f"recipe {loaded.name} ({loaded.variant}): {loaded.trainer} on {loaded.model}")
    out = run_recipe(loaded)
    typer.echo(f"model saved to {out}")
