"""One progress bar for every long loop (grading, generation): an ``advance(n)`` callback."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.progress import MofNCompleteColumn, Progress, TimeElapsedColumn


@contextmanager
def progress_bar(enabled: bool, total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``: draws a rich bar when ``enabled`` and there is work, else does nothing."""
    if not enabled or total == 0:
        yield lambda n: None
        return
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
