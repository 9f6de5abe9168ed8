"""docs/production.md runs: its roles on a real PostgreSQL server, the first sync as the owner and the
next ones as the sync role, the crontab line, the systemd units (``systemd-analyze verify``, then
their ``ExecStart``), the freshness check; then what the page claims beyond its blocks: the sync
role's privileges are exactly enough, an upgrade needs the owner, each exit status, the listener's
answers."""

from __future__ import annotations

import hashlib
import hmac
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from click.testing import CliRunner

import apidriver
from apidriver.cli import cli
from apidriver.emulator import Emulator

from ..conftest import CONVERSION_TASKS
from ..emulator.support import wait_until
from ..history.postgres import PostgresServer
from ..history.test_follow import Running
from .harness import (
    BIN,
    Block,
    DocRun,
    Outcome,
    Ran,
    blocks,
    free_port,
    start_emulator,
    statements,
)

DOC = "docs/production.md"
ROLES = ("history_owner", "history_sync", "history_reader")


@pytest.fixture
def pg(pg_database: Any) -> Iterator[tuple[PostgresServer, str] | None]:
    """The test's database; the page's roles (they belong to the whole server) go with it."""
    yield pg_database
    if pg_database is not None:
        server, name = pg_database
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=apidriver dbname={name}", autocommit=True) as admin:
            for role in ROLES:
                if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                    admin.execute(f"DROP OWNED BY {role} CASCADE")
                    admin.execute(f"DROP ROLE {role}")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emulator = start_emulator(jobs=30, seed=8)
    yield emulator
    emulator.stop()


class Server:
    """What the page's blocks need of the machine they run on: a directory for /srv/cloudconvert
    (with the venv), the environment file, unit files, the database and its roles."""

    def __init__(self, root: Path, pg: tuple[PostgresServer, str] | None) -> None:
        self.root = root
        self.srv = root / "srv"
        self.srv.mkdir()
        (self.srv / ".venv").symlink_to(Path(sys.prefix))
        self.units = root / "units"
        self.units.mkdir()
        self.pg = pg
        self.env: dict[str, str] = {}
        self.ran_units: list[tuple[str, str]] = []  # (unit, what ran)

    def url(self, role: str) -> str:
        if self.pg is None:
            return f"sqlite:///{self.root / 'replica.sqlite'}"
        server, name = self.pg
        return f"postgresql+psycopg://{role}@127.0.0.1:{server.port}/{name}"

    def connect(self, role: str) -> psycopg.Connection[Any]:
        assert self.pg is not None
        server, name = self.pg
        return psycopg.connect(f"host=127.0.0.1 port={server.port} user={role} dbname={name}", autocommit=True)

    @property
    def substitutions(self) -> dict[str, str]:
        out = {f"postgresql+psycopg://{role}@db.example.com/history": self.url(role) for role in ROLES}
        out["/srv/cloudconvert/.venv/bin/apidriver"] = str(BIN / "apidriver")
        out["/srv/cloudconvert"] = str(self.srv)
        out["/etc/cloudconvert/sync.env"] = str(self.root / "sync.env")
        out["127.0.0.1:8787"] = f"127.0.0.1:{free_port()}"
        return out

    # -- the handlers of the page's ```ini and ```crontab blocks ------------------------------------

    def ini(self, block: Block, run: DocRun) -> Outcome:
        first, *lines = block.code.splitlines()
        path = Path(first.removeprefix("# ").split()[0])
        if path.name == "sync.env":  # the environment file: the commands below read it
            self.env = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
            (self.root / "sync.env").write_text(block.code)
            run.env.update(self.env)
            return Outcome(block, value=self.env)
        unit = self.units / path.name
        unit.write_text(block.code)
        verified = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False, timeout=60)
        assert verified.returncode == 0 and verified.stderr == "", f"{block.where}: {verified.stderr}"
        keys = dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
        if "OnCalendar" in keys:
            calendar = subprocess.run(["systemd-analyze", "calendar", keys["OnCalendar"]], capture_output=True, text=True, check=False)
            assert calendar.returncode == 0, calendar.stderr
            return Outcome(block, value=keys)
        command = re.sub(r"\$\{(\w+)\}", lambda m: self.env[m[1]], keys["ExecStart"])  # as systemd expands it
        if "--follow" in command:  # `systemctl stop` sends SIGTERM
            ran = run.start_server(command, "", stop=True, stop_with=signal.SIGTERM)
        else:
            ran = run.run_command(command)
        assert ran.returncode == 0, f"{block.where}: {ran.stdout}\n{ran.stderr}"
        self.ran_units.append((path.name, ran.stdout))
        return Outcome(block, commands=[ran], value=keys)

    def crontab(self, block: Block, run: DocRun) -> Outcome:
        outcome = Outcome(block)
        for line in block.code.splitlines():
            if line.strip() and not line.startswith("#"):
                command = line.split(None, 5)[5]  # after minute, hour, day, month and weekday
                result = subprocess.run(["sh", "-c", command], cwd=self.root, env=run.env, capture_output=True, text=True, timeout=120, check=False)
                assert result.returncode == 0, f"{block.where}: {result.stdout}\n{result.stderr}"
                outcome.commands.append(Ran(command, "", result.returncode, result.stdout, result.stderr))
        return outcome


def test_every_block_of_the_production_guide(emulator: Emulator, tmp_path: Path, pg: Any) -> None:
    server = Server(tmp_path, pg)
    not_run = {"location = /cloudconvert": "needs nginx (the listener's answers are checked below)"}
    if pg is None:
        not_run["CREATE ROLE history_owner"] = not_run["now() - interval '1 hour'"] = "APIDRIVER_TEST_POSTGRES=0"

    def sql(block: Block, statement: str) -> Any:
        return server.connect("apidriver" if "CREATE ROLE" in block.code else "history_reader")

    with DocRun(
        DOC, emulator, tmp_path, substitutions=server.substitutions, not_run=not_run, sql=sql,
        handlers={"ini": server.ini, "crontab": server.crontab},
    ) as run:
        run.run()
    assert len(run.ran) == len(run.outcomes) - len(not_run)

    first_sync = run.outcome("apidriver sync --to postgresql+psycopg://history_owner")
    assert [c.stdout.startswith("Replica: ") for c in first_sync.commands[:2]] == [True, True]  # the owner, then the sync role
    assert "1 row · 0 requests" in first_sync.command("apidriver query").stdout  # the reader, Offline
    assert "Replica: " in (server.srv / "sync.log").read_text()  # the crontab line
    assert [name for name, _ in server.ran_units] == ["cloudconvert-sync.service", "cloudconvert-follow.service"]
    assert server.ran_units[1][1].rstrip().endswith("Stopped.")  # SIGTERM: exit 0, its work done
    if pg is not None:
        (fresh,) = [o for o in run.ran if "interval '1 hour'" in o.block.code]
        assert fresh.results[0][1] == []  # every table synced in the last hour


@pytest.fixture
def roles(emulator: Emulator, pg: Any, tmp_path: Path) -> Server:
    """The page's roles, and a first sync as the owner."""
    if pg is None:
        pytest.skip("APIDRIVER_TEST_POSTGRES=0")
    server = Server(tmp_path, pg)
    (block,) = [b for b in blocks(DOC) if "CREATE ROLE history_owner" in b.code]
    with server.connect("apidriver") as admin:
        for statement in statements(block.code):
            admin.execute(statement)
    apidriver.sync(connection(emulator), to=server.url("history_owner"))
    return server


def connection(emulator: Emulator) -> str:
    return f"APIKey={emulator.api_key};BaseURL={emulator.base_url}"


def changes(emulator: Emulator) -> None:
    """Traffic: a day and more later (rows to mark gone), a new job (rows to insert)."""
    emulator.advance_clock(25 * 3600)
    conn = apidriver.connect(connection(emulator))
    try:
        conn.cursor().execute("INSERT INTO Jobs (tag, tasks) VALUES ('new', ?)", (CONVERSION_TASKS,))
    finally:
        conn.close()


def test_the_sync_role_has_exactly_what_it_needs(emulator: Emulator, roles: Server) -> None:
    changes(emulator)
    report = apidriver.sync(connection(emulator), to=roles.url("history_sync"))
    assert report["Jobs"].inserted == 1 and report["Jobs"].removed > 0 and report["Tasks"].updated + report["Tasks"].removed > 0
    with roles.connect("apidriver") as admin:
        for privilege in ("SELECT", "INSERT", "UPDATE"):
            admin.execute(f"REVOKE {privilege} ON ALL TABLES IN SCHEMA cloudconvert FROM history_sync")
            changes(emulator)
            with pytest.raises(apidriver.OperationalError, match="permission denied"):
                apidriver.sync(connection(emulator), to=roles.url("history_sync"))
            admin.execute(f"GRANT {privilege} ON ALL TABLES IN SCHEMA cloudconvert TO history_sync")
    apidriver.sync(connection(emulator), to=roles.url("history_sync"))
    # The reader reads, offline, and cannot sync.
    reader = apidriver.connect(Offline=True, CacheConnection=roles.url("history_reader"))
    try:
        assert reader.cursor().execute("SELECT count(*) > 30, count(_removed_at) > 0 FROM Jobs").fetchone() == (1, 1)
    finally:
        reader.close()
    with pytest.raises(apidriver.OperationalError, match="permission denied"):
        apidriver.sync(connection(emulator), to=roles.url("history_reader"))


def test_an_upgrade_takes_the_owner(emulator: Emulator, roles: Server) -> None:
    with roles.connect("history_owner") as owner:  # a replica as an older apidriver left it
        owner.execute('ALTER TABLE "Jobs" DROP COLUMN _exact')
    with pytest.raises(apidriver.OperationalError, match="must be owner of table"):
        apidriver.sync(connection(emulator), to=roles.url("history_sync"))
    with roles.connect("history_owner") as owner:  # it changed nothing
        assert owner.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'Jobs' AND column_name = '_exact'").fetchone() == (0,)
    apidriver.sync(connection(emulator), to=roles.url("history_owner"))
    apidriver.sync(connection(emulator), to=roles.url("history_sync"))


# -- exit codes -----------------------------------------------------------------------------------


def sync_status(emulator: Emulator, tmp_path: Path, *args: str, connect: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``apidriver sync ARGS`` in this process: its status and what it said."""
    options = ["--connect", connect if connect is not None else connection(emulator)] if connect != "" else []
    result = CliRunner().invoke(cli, ["sync", "--to", f"sqlite:///{tmp_path / 'replica.sqlite'}", *options, *args], env={"APIDRIVER_CONNECTION": None, "CLOUDCONVERT_API_KEY": None, **(env or {})})
    return result.exit_code, result.stdout + result.stderr


def test_exit_statuses_as_the_page_lists_them(emulator: Emulator, tmp_path: Path) -> None:
    from apidriver.emulator.keys import SCOPES

    assert sync_status(emulator, tmp_path)[0] == 0
    wrong_key = sync_status(emulator, tmp_path, connect=f"APIKey=wrong;BaseURL={emulator.base_url}")
    assert wrong_key[0] == 1 and "401" in wrong_key[1]
    no_scope = Emulator(scoped_keys={"users-only": ["user.read"]}, jobs=2).start()
    try:
        scope = sync_status(no_scope, tmp_path, connect=f"APIKey=users-only;BaseURL={no_scope.base_url}")
        assert scope[0] == 1 and "task.read" in scope[1]
    finally:
        no_scope.stop()
    assert set(SCOPES) >= {"task.read"}
    unreachable = sync_status(emulator, tmp_path, connect=f"APIKey=k;BaseURL=http://127.0.0.1:{free_port()};MaxRetries=0")
    assert unreachable[0] == 1 and "Could not get an answer" in unreachable[1]
    database = CliRunner().invoke(cli, ["sync", "--to", f"postgresql+psycopg://u@127.0.0.1:{free_port()}/db", "--connect", connection(emulator)])
    assert database.exit_code == 1 and "The replica database" in database.stderr
    assert CliRunner().invoke(cli, ["sync", "--to", "nonsense", "--connect", connection(emulator)]).exit_code == 1
    assert sync_status(emulator, tmp_path, connect="")[0] == 2  # no key anywhere
    assert sync_status(emulator, tmp_path, "--nope")[0] == 2
    assert sync_status(emulator, tmp_path, "--listen", "127.0.0.1:0")[0] == 2


def start_sync(emulator: Emulator, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "apidriver"), "sync", "--to", f"sqlite:///{tmp_path / 'signals.sqlite'}", "--connect", connection(emulator) + ";MaxRetries=0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.parametrize("sent, status", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_a_signal_during_a_sync(emulator: Emulator, tmp_path: Path, sent: int, status: int) -> None:
    """Ctrl-C: 130, as the other commands, once the request in flight has ended (here a stall of 2 s);
    SIGTERM: Python's default, killed at once (143 in a shell)."""
    emulator.add_fault("stall", path="/v2/jobs", method="GET", stall_seconds=2)
    process = start_sync(emulator, tmp_path)
    try:
        wait_until(lambda: any(r["path"] == "/v2/jobs" for r in emulator.pending_requests()), timeout=30, what="the sync's stalled request")
        process.send_signal(sent)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == status, err
    if sent == signal.SIGINT:
        assert err == "apidriver: interrupted\n"


def test_a_follower_ends_with_1_when_a_sync_of_its_loop_fails(emulator: Emulator, tmp_path: Path) -> None:
    process = start_sync(emulator, tmp_path, "--follow", "--interval", "0.2")
    try:
        assert process.stdout is not None
        while " sync: " not in process.stdout.readline():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
        emulator.add_fault("503", path="/v2/", count=1000)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 1 and err.startswith("apidriver: ") and "503" in err


# -- the listener --------------------------------------------------------------------------------


def test_the_listener_answers_as_the_page_says(emulator: Emulator, tmp_path: Path) -> None:
    follower = Running(emulator, f"sqlite:///{tmp_path / 'replica.sqlite'}", webhooks=True, interval=60.0, port=None).start()
    try:
        url = f"http://127.0.0.1:{follower.port}/any/path"
        secret = follower.follower.secret
        assert secret is not None

        def signed(body: bytes) -> dict[str, str]:
            return {"CloudConvert-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}

        assert httpx.get(url).status_code == 501
        assert httpx.post(url, content=b"{}", headers={"CloudConvert-Signature": "nope"}).status_code == 401
        assert httpx.post(url, content=b"not json", headers=signed(b"not json")).status_code == 400
        assert httpx.post(url, content=b'{"event": "job.created"}', headers=signed(b'{"event": "job.created"}')).status_code == 200
        with socket.create_connection(("127.0.0.1", follower.port), timeout=10) as sock:  # past 16 MiB: refused unread
            sock.sendall(f"POST /cloudconvert HTTP/1.1\r\nHost: x\r\nContent-Length: {16 * 2**20 + 1}\r\n\r\n".encode())
            assert sock.recv(100).split(b" ")[1] == b"413"
    finally:
        follower.stop()
