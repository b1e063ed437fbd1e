"""``python -m scaffoldrl``: the command line, e.g. under ``accelerate launch -m scaffoldrl train ...``."""

from .cli import app

app()
