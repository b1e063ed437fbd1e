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
