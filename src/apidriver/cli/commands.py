"""The commands. Each opens a connection with ``apidriver.connect`` and formats what it returns."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from .. import __version__
from ..emulator.command import command as emulator_command
from ..reference import markdown as reference_markdown
from . import describe as reference
from . import output
from .connecting import connection_option, open_connection, profile_of
from .errors import Group
from .statement import ParameterError, check_parameters, parameters_of, run, split_statements

HOW_TO_PASS = 'pass values after the SQL for ? (apidriver query "... WHERE id = ?" VALUE) and -p NAME VALUE for :NAME'
from .mcp import mcp
from .sync import sync


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="apidriver")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """SQL over REST APIs: query a CloudConvert API v2 account as SQLite tables.

    The connection comes from --connect, else $APIDRIVER_CONNECTION, else the
    API key in $CLOUDCONVERT_API_KEY. To try it offline:

    \b
        apidriver demo
    """
    ctx.ensure_object(dict)["debug"] = debug


@cli.command(short_help="Walk through apidriver on the built-in emulator.")
@click.option("--jobs", default=120, show_default=True, help="Sample jobs in the emulator's account.")
@click.option("--seed", default=42, show_default=True, help="Random seed of the sample data.")
def demo(jobs: int, seed: int) -> None:
    """Walk through apidriver on the built-in emulator (offline).

    Starts a CloudConvert emulator with a sample account, then reads the
    failed jobs through the SQLAlchemy ORM, shows what each query sends to
    the API, a join with an aggregate, and writes.

    \b
    Example:
        apidriver demo
    """
    from .demo import run_demo

    run_demo(Console(highlight=False), jobs=jobs, seed=seed)


@cli.command(short_help="Run one SQL statement.")
@click.argument("sql")
@click.argument("values", nargs=-1, metavar="[VALUE]...")
@connection_option
@click.option("-f", "--format", "fmt", type=click.Choice(output.FORMATS), default="table", show_default=True, help="Output format.")
@click.option("-p", "--param", "params", nargs=2, multiple=True, metavar="NAME VALUE", help="A value for :NAME in the SQL (repeatable).")
@click.option("--no-header", is_flag=True, help="Leave out the header (table, csv, tsv).")
@click.option("--requests", "show_requests", is_flag=True, help="Print the HTTP requests the statement made to stderr.")
def query(
    sql: str, values: tuple[str, ...], connection: str | None, fmt: str, params: tuple[tuple[str, str], ...], no_header: bool, show_requests: bool
) -> None:
    """Run one SQL statement and print its result (SQL '-' reads it from stdin).

    VALUEs after the SQL fill its ? parameters in order; -p NAME VALUE fills
    :NAME. A statement without a result set (INSERT, DELETE) prints how many
    rows it changed. Timestamps are ISO 8601; JSON columns are nested in
    json/jsonl. On a terminal, a table too wide for it is shown vertically.

    \b
    Example:
        apidriver query "SELECT id, tag, created_at FROM Jobs WHERE status = ?" error --format csv
    """
    text = sys.stdin.read() if sql == "-" else sql
    statements = split_statements(text)
    if len(statements) != 1:
        raise click.UsageError(
            f"query runs one statement ({len(statements)} given); to run a script, pipe it into: apidriver shell"
        )
    named = dict(params)
    parameters: tuple[str, ...] | dict[str, str] | None = values or named or None
    with open_connection(connection) as conn:
        try:
            check_parameters(parameters_of(conn, statements[0]), values, named, HOW_TO_PASS)
        except ParameterError as error:
            raise click.UsageError(str(error)) from None
        cursor = conn.cursor()
        try:
            result = run(cursor, statements[0], parameters)
        finally:
            if show_requests:
                for record in cursor.requests:
                    click.echo(str(record), err=True)
        output.write(result, fmt, sys.stdout, options=output.Options(headers=not no_header))
        sys.stdout.flush()


@cli.command(short_help="An interactive SQL shell.")
@connection_option
@click.option("-f", "--format", "fmt", type=click.Choice(output.FORMATS), default="table", show_default=True, help="Output format.")
@click.option(
    "--history",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("~/.apidriver_history"),
    show_default=True,
    help="History file of the interactive shell.",
)
@click.option("--no-confirm", is_flag=True, help="Run DELETE statements without asking first (as .confirm off).")
@click.option("--bail", is_flag=True, help="Stop a script at its first error (as .bail on).")
@click.pass_context
def shell(ctx: click.Context, connection: str | None, fmt: str, history: Path, no_confirm: bool, bail: bool) -> None:
    """An interactive SQL shell; with piped stdin, runs the statements it reads.

    Statements end with ';' and may span lines. Tab completes table and column
    names; Ctrl-R searches the history. A DELETE asks before it runs. Commands:
    .tables, .schema, .read, .output, .once, .format (.mode), .headers,
    .nullvalue, .timer, .bail, .confirm, .requests, .help, .quit (see .help).

    \b
    Example:
        apidriver shell --connect "APIKey=emulator-key;BaseURL=http://127.0.0.1:8000"
    """
    from .errors import debugging
    from .shell import Shell

    with open_connection(connection) as conn:
        shell = Shell(conn, fmt=fmt, debug=debugging(ctx), confirm=not no_confirm, bail=bail)
        status = shell.run(history.expanduser())
    ctx.exit(status)


@cli.command(short_help="List the tables and procedures.")
@connection_option
@click.option("--markdown", is_flag=True, help="Print the whole reference as Markdown (docs/tables.md).")
def tables(connection: str | None, markdown: bool) -> None:
    """List the tables and procedures, with the columns whose filters are sent to the API.

    Needs no API key. The profile is CloudConvert unless the connection names another.

    \b
    Example:
        apidriver tables
    """
    profile = profile_of(connection)
    if markdown:
        click.echo(reference_markdown(profile), nl=False)
    else:
        Console(highlight=False).print(reference.overview(profile))


@cli.command(short_help="Describe a table or procedure.")
@click.argument("name")
@connection_option
@click.option("--markdown", is_flag=True, help="Print Markdown, as in docs/tables.md.")
def describe(name: str, connection: str | None, markdown: bool) -> None:
    """Describe a table (columns, types, descriptions, push-down, writes) or a procedure.

    Needs no API key.

    \b
    Example:
        apidriver describe Jobs
    """
    profile = profile_of(connection)
    item = reference.find(profile, name)
    if item is None:
        raise click.BadParameter(f"no table or procedure {name!r}; known: {', '.join(reference.names(profile))}", param_hint="NAME")
    text = reference.markdown(profile, item)
    if markdown:
        click.echo(text, nl=False)
    else:
        Console(highlight=False).print(reference.rendered(text))


cli.add_command(emulator_command)  # apidriver emulator: the emulator's own command line (emulator/command.py)
cli.add_command(sync)  # apidriver sync: cli/sync.py
cli.add_command(mcp)  # apidriver mcp: cli/mcp.py (the SDK is imported only when it runs)
