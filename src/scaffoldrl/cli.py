from pathlib import Path

import typer
app = typer.Typer()


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
