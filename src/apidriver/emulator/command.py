"""The emulator's command line, defined once: ``python -m apidriver.emulator`` runs :data:`command`,
and ``apidriver emulator`` is the same command in the ``apidriver`` group, so both take the same
options with the same help. Each option is named after the :class:`~.server.Emulator` keyword it
sets. Importing this module loads click, not the server (the ``apidriver`` command starts fast).
"""

from __future__ import annotations

from typing import Any

import click

from .control import DEFAULT_RATE_LIMIT
from .keys import DEFAULT_API_KEY, scoped_key

PROG = "python -m apidriver.emulator"


def _scoped_keys(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, list[str]]:
    """Each ``--scoped-key KEY=scope,scope``, checked (known scopes), as the keys and their scopes."""
    keys: dict[str, list[str]] = {}
    for value in values:
        try:
            key, scopes = scoped_key(value)
        except ValueError as error:
            raise click.BadParameter(f"{value!r}: {error}") from None
        keys[key] = scopes
    return keys


@click.command(
    "emulator",
    short_help="Run the local CloudConvert API emulator.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=0, show_default=True, help="Port to listen on; 0 picks a free one.")
@click.option("--api-key", default=DEFAULT_API_KEY, show_default=True, help="A key with every scope.")
@click.option(
    "--scoped-key",
    "scoped_keys",
    multiple=True,
    metavar="KEY=SCOPE,...",
    callback=_scoped_keys,
    help="A key with only these scopes, e.g. readonly=task.read,user.read (repeatable).",
)
@click.option("--jobs", type=int, default=0, show_default=True, help="Sample jobs to seed the account with.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of the sample data.")
@click.option("--latency-ms", type=float, default=0, show_default=True, help="Delay added to every request, in milliseconds.")
@click.option(
    "--rate-limit",
    type=int,
    default=DEFAULT_RATE_LIMIT,
    show_default=True,
    help="API requests per window per account and method, as recorded; 0 = unlimited.",
)
@click.option("--rate-window", type=float, default=60.0, show_default=True, help="Length of the rate-limit window in seconds.")
@click.option("--task-seconds", type=float, default=1.0, show_default=True, help="How long each task processes.")
@click.option("--credits", type=int, default=2500, show_default=True, help="Conversion credits of the account.")
@click.option(
    "--retention-hours", type=float, default=24.0, show_default=True, help="Delete jobs and tasks this long after they end, as the API does."
)
@click.option("--job-webhook-secret", default=None, help="The secret signing per-job webhook_url deliveries (default: random, printed).")
@click.option(
    "--allow-webhook-host",
    "allow_webhook_hosts",
    multiple=True,
    metavar="HOST",
    help="Also deliver webhooks to HOST (repeatable; * = any host). By default deliveries go only to loopback "
    "addresses (127.0.0.1, ::1, localhost): the emulator never calls the internet.",
)
@click.option(
    "--keep-history", is_flag=True, default=False, help="Remember every job it ever had, deleted and expired ones too (GET /_emulator/history)."
)
def command(**options: Any) -> None:
    """Run the local CloudConvert API emulator (apidriver emulator, or python -m apidriver.emulator).

    Prints its root URL on the first line of stdout (the API is under /v2),
    then job_webhook_secret=SECRET, and serves until interrupted.

    \b
    Example:
        apidriver emulator --port 8000 --api-key emulator-key --jobs 100 --seed 1
    """
    from .server import Emulator

    emulator = Emulator(**options)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass


def main() -> None:
    """``python -m apidriver.emulator``: runs :data:`command` under that name, then exits."""
    command.main(prog_name=PROG)
