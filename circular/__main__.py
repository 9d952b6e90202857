"""``python -m circular``: the same command line as the ``circular`` script."""

from .cli import app

app(prog_name="circular")
