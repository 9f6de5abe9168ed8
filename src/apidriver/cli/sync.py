"""``apidriver sync``: copy the account into a database (``apidriver.sync``), once or following it."""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import click
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ..replica import open_target
from ..replica.follow import Delivery, Follower
from ..replica.replicator import Replicator
from ..replica.report import SyncReport
from .connecting import connection_option, open_connection
from .output import plural


class SyncProgress:
    """The transient stderr line of a running sync: table, objects read, requests, time (terminals only)."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.enabled = enabled
        self.table = ""
        self.objects = 0
        self.requests = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._spinner = Spinner("dots", style="cyan")
        self._live: Live | None = None

    def __call__(self, table: str, objects: int, requests: int) -> None:
        with self._lock:
            self.table = table
            self.objects += objects
            self.requests += requests

    def __enter__(self) -> SyncProgress:
        self.started = time.monotonic()
        self.objects = self.requests = 0
        if self.enabled:
            self._live = Live(self, console=self.console, transient=True, refresh_per_second=8, redirect_stdout=False, redirect_stderr=False)
            self._live.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with self._lock:
            text = f"syncing {self.table or '...'} · {plural(self.objects, 'object')} read · {plural(self.requests, 'request')} · {time.monotonic() - self.started:.1f} s"
        self._spinner.text = Text(text, style="dim")
        yield self._spinner


def report_table(report: SyncReport) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for name, justify in (("table", "left"), ("inserted", "right"), ("updated", "right"), ("newly gone", "right"), ("requests", "right"), ("seconds", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for t in report:
        table.add_row(t.table, f"{t.inserted:,}", f"{t.updated:,}", f"{t.removed:,}", f"{t.requests:,}", f"{t.seconds:.2f}")
    return table


def summary(report: SyncReport) -> str:
    inserted = sum(t.inserted for t in report)
    updated = sum(t.updated for t in report)
    removed = sum(t.removed for t in report)
    return (
        f"{plural(inserted, 'row')} inserted, {updated:,} updated, {removed:,} newly gone · "
        f"{plural(report.requests, 'request')} · {report.seconds:.2f} s"
    )


@click.command(short_help="Copy the account into a database; keep its history.")
@connection_option
@click.option("--to", "to", metavar="URL", help="SQLAlchemy URL of the replica (default: <profile>.sqlite in the working directory).")
@click.option("--tables", metavar="NAMES", help="Comma-separated tables (default: the account's data; Operations only when named).")
@click.option("--full", is_flag=True, help="Read every list whole instead of only what can have changed.")
@click.option("--secrets", is_flag=True, help="Also copy secrets (webhook signing secrets); by default they are stored as NULL.")
@click.option("--follow", is_flag=True, help="Keep the replica current until Ctrl-C or SIGTERM.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True, help="With --follow: seconds between syncs (with webhooks: between reconciliations).")
@click.option("--listen", metavar="HOST:PORT", help="With --follow: receive webhook deliveries on this address.")
@click.option("--public-url", metavar="URL", help="With --follow: the URL the API delivers to (it must reach --listen).")
def sync(
    connection: str | None,
    to: str | None,
    tables: str | None,
    full: bool,
    secrets: bool,
    follow: bool,
    interval: float,
    listen: str | None,
    public_url: str | None,
) -> None:
    """Copy the account into a database, and keep what the API deletes after 24 hours.

    Each run reads only what can have changed (new jobs, jobs not yet ended,
    standalone tasks, webhooks, the account) and prints, per table, the rows
    inserted, updated and newly gone, the requests and the time. Rows are
    never deleted: _removed_at says when the API forgot them and
    _removed_reason why (deleted, expired). Safe to stop at any moment; the
    next run completes the replica. A new SQLite replica is readable by its
    owner only; webhook signing secrets are not copied without --secrets.

    \b
    Example:
        apidriver sync --to postgresql+psycopg://me@db.example.com/history
        apidriver sync --follow --listen 0.0.0.0:8787 --public-url https://me.example.com/cloudconvert
    """
    if (listen or public_url) and not follow:
        raise click.UsageError("--listen and --public-url go with --follow.")
    err = Console(stderr=True, highlight=False)
    out = Console(highlight=False, soft_wrap=True)
    with open_connection(connection) as conn:
        target = open_target(conn, to)
        try:
            click.echo(f"Replica: {target.shown}")
            progress = SyncProgress(err, sys.stderr.isatty())
            replicator = Replicator(conn, target, progress=progress, secrets=secrets)
            if not follow:
                with progress:
                    report = replicator.run(tables, full)
                out.print(report_table(report))
                click.echo(summary(report))
                return
            _follow(conn, replicator, tables, interval, listen, public_url, progress, full)
        finally:
            target.close()


def _follow(
    conn: Any, replicator: Replicator, tables: str | None, interval: float, listen: str | None, public_url: str | None, progress: SyncProgress, full: bool
) -> None:
    def synced(report: SyncReport) -> None:
        click.echo(f"{time.strftime('%H:%M:%S')} sync: {summary(report)}")

    def delivered(delivery: Delivery) -> None:
        if delivery.status == 200 and delivery.written is not None:
            click.echo(f"{time.strftime('%H:%M:%S')} {delivery.event} {', '.join(delivery.keys)}: written in {(delivery.written - delivery.received) * 1000:.0f} ms")
        else:
            click.echo(f"{time.strftime('%H:%M:%S')} delivery refused ({delivery.status})", err=True)

    if full:
        with progress:
            synced(replicator.run(tables, True))
    follower = Follower(conn, replicator, tables, interval, listen, public_url, synced, delivered)

    def terminate(signum: int, frame: FrameType | None) -> None:
        follower.stop()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        if listen is not None:
            click.echo(f"Following: webhooks at {public_url} (listening on {listen}), reconciling every {interval:g} s. Ctrl-C stops.")
        else:
            click.echo(f"Following: a sync every {interval:g} s. Ctrl-C stops.")
        try:
            follower.run()
        except KeyboardInterrupt:
            pass
        click.echo("Stopped" + (" (webhook deleted)" if listen is not None else "") + ".")
    finally:
        signal.signal(signal.SIGTERM, previous)
