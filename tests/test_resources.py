"""Resources: threads and sockets are released by close() and by dropping a
connection; process exit is prompt; a running statement can be cancelled
from another thread and leaves the connection usable."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import CONVERSION_TASKS, connect_to
from .emulator.support import wait_until


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(jobs=24, seed=9)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class Baseline:
    """Threads and file descriptors of this process before the test did anything."""

    def __init__(self) -> None:
        gc.collect()
        self.threads = threading.active_count()
        self.fds = open_fds()

    def restored(self, timeout: float = 5.0, emu: Any = None) -> None:
        def back() -> bool:
            gc.collect()
            return threading.active_count() <= self.threads and open_fds() <= self.fds

        try:
            wait_until(back, timeout=timeout, what="threads and fds back to baseline")
        except AssertionError:
            frames = sys._current_frames()
            stacks = "\n".join(
                f"{t.name}:\n" + "".join(traceback.format_stack(frames[t.ident])[-6:])
                for t in threading.enumerate()
                if t.ident in frames and t.name.startswith("apidriver")
            )
            raise AssertionError(
                f"threads {threading.active_count()} (baseline {self.threads}); fds {open_fds()} (baseline {self.fds}) "
                f"{sorted(os.listdir('/proc/self/fd'))}\n{stacks}\nPENDING {emu.pending_requests() if emu else ''}"
                f"\nLAST {[(r['query'], r['status']) for r in emu.requests()[-8:]] if emu else ''}"
            ) from None


def scan(conn: apidriver.Connection) -> int:
    return len(conn.cursor().execute("SELECT id FROM Jobs").fetchall())


# -- release -----------------------------------------------------------------------------------------------------------------


def test_close_releases_threads_and_sockets(emu: Emulator) -> None:
    baseline = Baseline()
    connections = [connect_to(emu, PageSize=5) for _ in range(5)]
    assert [scan(c) for c in connections] == [24] * 5
    for c in connections:
        c.close()
    baseline.restored()


def test_unclosed_connections_are_released(emu: Emulator) -> None:
    baseline = Baseline()
    for _ in range(20):
        conn = connect_to(emu, PageSize=5)
        assert scan(conn) == 24
        del conn
    baseline.restored(emu=emu)


def test_a_dropped_connection_needs_no_garbage_collector(emu: Emulator) -> None:
    conn = connect_to(emu, PageSize=5)
    cur = conn.cursor()
    cur.execute("SELECT j.id, t.id FROM Jobs j JOIN Tasks t ON t.job_id = j.id").fetchall()
    ref = weakref.ref(conn)
    gc.disable()
    try:
        del conn, cur
        assert ref() is None, "the connection is kept alive by a reference cycle"
    finally:
        gc.enable()


def test_pandas_read_sql_on_unclosed_connections(emu: Emulator) -> None:
    pd = pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas prefers SQLAlchemy connectables
        baseline = Baseline()
        for _ in range(10):
            frame = pd.read_sql("SELECT id, status FROM Jobs", connect_to(emu, PageSize=5))
            assert len(frame) == 24
    baseline.restored()


def test_an_idle_connection_holds_no_worker_threads(emu: Emulator) -> None:
    baseline = Baseline()
    with connect_to(emu, PageSize=3) as conn:
        busiest = 0
        for _ in conn.cursor().execute("SELECT id FROM Jobs"):
            busiest = max(busiest, threading.active_count())
        assert busiest > baseline.threads  # pages were fetched on workers
        wait_until(lambda: threading.active_count() <= baseline.threads, timeout=5, what="idle workers to end")
        assert scan(conn) == 24  # and they come back when needed


CHILD = textwrap.dedent(
    """
    import sys, time
    import apidriver
    conn = apidriver.connect(APIKey=sys.argv[1], BaseURL=sys.argv[2], PageSize=4, Timeout=30, MaxRetries=4)
    cur = conn.cursor()
    cur.execute("SELECT id FROM Jobs")
    cur.fetchone()  # page 1 is here, pages 2 and 3 were sent ahead and stall
    time.sleep(0.2)
    print("ready", flush=True)
    """
)


def test_exit_is_prompt_with_a_stalled_look_ahead(emu: Emulator) -> None:
    # (the query is "page=N&per_page=4": a fault on "page=4" would also match page 1)
    emu.add_fault("stall", path="/v2/jobs", method="GET", query="page=2", count=5, stall_seconds=20)
    emu.add_fault("stall", path="/v2/jobs", method="GET", query="page=3", count=5, stall_seconds=20)
    launched = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, emu.api_key, emu.base_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        started = time.monotonic()
        child.wait(timeout=10)
        assert time.monotonic() - started < 2.0
        assert time.monotonic() - launched < 8.0  # and it never waited for the stalled pages
        assert child.returncode == 0, child.stderr.read() if child.stderr else ""
        assert any("page=2" in r["query"] for r in emu.pending_requests())  # the look-ahead was really stalled
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


LEFT_OPEN = textwrap.dedent(
    """
    import sys
    import apidriver
    settings = dict(arg.split("=", 1) for arg in sys.argv[1:])
    conn = apidriver.connect(**settings)
    cur = conn.cursor()
    print(cur.execute("SELECT count(*) FROM Tasks").fetchone()[0], len(cur.execute("SELECT * FROM Jobs").fetchall()), flush=True)

    def tasks():  # a module-level function: a reference cycle holds the connection until the end
        return conn.cursor().execute("SELECT id FROM Tasks").fetchall()
    """
)


@pytest.mark.parametrize("kind", ["live", "CacheTTL", "Offline"])
def test_a_connection_left_open_at_exit_ends_the_process_cleanly(emu: Emulator, tmp_path: Any, kind: str) -> None:
    """The interpreter's last collection used to free the APSW database with its virtual tables
    still open, after APSW's own module was cleared: the process died of SIGSEGV (exit -11)."""
    settings = [f"APIKey={emu.api_key}", f"BaseURL={emu.base_url}"]
    if kind == "CacheTTL":
        settings.append("CacheTTL=60")
    elif kind == "Offline":
        apidriver.sync(f"APIKey={emu.api_key};BaseURL={emu.base_url}", to=f"sqlite:///{tmp_path}/replica.sqlite")
        settings = ["Offline=true", f"CacheLocation={tmp_path}/replica.sqlite"]
    child = subprocess.run([sys.executable, "-c", LEFT_OPEN, *settings], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, (child.returncode, child.stderr[-2000:])
    assert child.stdout.split() and child.stdout.split()[1] == "24"


# -- cancelling from another thread --------------------------------------------------------------------------------------


class Running:
    """Runs ``work`` in a thread and keeps what it returned or raised."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.ended_at: float | None = None

        def run() -> None:
            try:
                self.result = work()
            except BaseException as error:  # noqa: BLE001 - handed to the test
                self.error = error
            self.ended_at = time.monotonic()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def join(self, timeout: float = 10.0) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the statement did not stop"


def stall_page_two(emu: Emulator, seconds: float = 8.0) -> None:
    emu.add_fault("stall", path="/v2/jobs", method="GET", query="page=2", count=10, stall_seconds=seconds)


def wait_for_request(emu: Emulator, query: str) -> None:
    """Until a request with ``query`` has reached the emulator and is stalled there."""
    wait_until(lambda: any(query in r["query"] for r in emu.pending_requests()) or None, timeout=5, what=f"a request with {query}")
    time.sleep(0.05)


@pytest.mark.parametrize("how", ["connection", "cursor"])
def test_cancel_stops_a_stalled_scan_at_once(emu: Emulator, how: str) -> None:
    stall_page_two(emu)
    with connect_to(emu, PageSize=5, Timeout=20) as conn:
        cur = conn.cursor()
        running = Running(lambda: cur.execute("SELECT id FROM Jobs").fetchall())
        wait_for_request(emu, "page=2")
        cancelled_at = time.monotonic()
        if how == "connection":
            conn.interrupt()
        else:
            cur.cancel()
        running.join()
        assert running.ended_at is not None and running.ended_at - cancelled_at < 1.0
        assert isinstance(running.error, apidriver.QueryCancelledError), repr(running.error)
        assert isinstance(running.error, apidriver.OperationalError)
        assert "cancel" in str(running.error).lower()
        assert cur.rowcount == -1
        # the connection is still usable, at once, though a worker still waits for the stalled page
        emu.clear_faults()
        started = time.monotonic()
        assert len(cur.execute("SELECT id FROM Jobs").fetchall()) == 24
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchone() == (24,)
        assert time.monotonic() - started < 2.0


def test_cancel_stops_a_rate_limit_wait(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=3, rate_limit=1, rate_window=60)
    with connect_to(emu) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchone() == (3,)
        cur = conn.cursor()
        running = Running(lambda: cur.execute("SELECT count(*) FROM Tasks").fetchall())
        wait_until(lambda: any(r["status"] == 429 for r in emu.requests()) or None, timeout=5, what="a 429")
        cancelled_at = time.monotonic()
        conn.interrupt()
        running.join()
        assert running.ended_at is not None and running.ended_at - cancelled_at < 1.0
        assert isinstance(running.error, apidriver.QueryCancelledError), repr(running.error)
    time.sleep(0.3)
    assert [r["status"] for r in emu.requests()].count(429) == 1  # no further attempt after the cancel


def test_cancel_stops_a_long_computation(emu: Emulator) -> None:
    with connect_to(emu) as conn:
        cur = conn.cursor()
        running = Running(
            lambda: cur.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c").fetchall()
        )
        time.sleep(0.3)
        cancelled_at = time.monotonic()
        conn.interrupt()
        running.join()
        assert running.ended_at is not None and running.ended_at - cancelled_at < 1.0
        assert isinstance(running.error, apidriver.QueryCancelledError), repr(running.error)
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (24,)


def test_cancel_with_nothing_running_changes_nothing(emu: Emulator) -> None:
    with connect_to(emu, PageSize=5) as conn:
        conn.interrupt()
        cur, idle = conn.cursor(), conn.cursor()
        cur.cancel()
        assert scan(conn) == 24
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (24,)
        # Cursors that ran nothing share one empty state: a cancel of one reaches no other.
        assert idle.requests == [] and idle.execute("SELECT count(*) FROM Jobs").fetchone() == (24,)


def test_cancel_reaches_a_paused_cursor_only_through_the_connection(emu: Emulator) -> None:
    with connect_to(emu, PageSize=5) as conn:
        paused = conn.cursor().execute("SELECT id FROM Jobs")
        assert paused.fetchone() is not None
        other = conn.cursor().execute("SELECT id FROM Jobs")
        assert other.fetchone() is not None
        other.cancel()
        assert len(paused.fetchall()) == 23  # another cursor's cancel does not touch it
        with pytest.raises(apidriver.QueryCancelledError):
            other.fetchall()
        again = conn.cursor().execute("SELECT id FROM Jobs")
        assert again.fetchone() is not None
        conn.interrupt()
        with pytest.raises(apidriver.QueryCancelledError):
            again.fetchall()
        assert scan(conn) == 24  # new statements run


def test_close_from_another_thread_during_a_scan(emu: Emulator) -> None:
    stall_page_two(emu)
    baseline = Baseline()
    conn = connect_to(emu, PageSize=5, Timeout=2)
    cur = conn.cursor()
    running = Running(lambda: cur.execute("SELECT id FROM Jobs").fetchall())
    wait_for_request(emu, "page=2")
    started = time.monotonic()
    conn.close()
    assert time.monotonic() - started < 1.0
    running.join()
    assert conn.closed
    assert isinstance(running.error, (apidriver.QueryCancelledError, apidriver.InterfaceError)), repr(running.error)
    assert "Please report" not in str(running.error)
    with pytest.raises(apidriver.InterfaceError, match="closed"):
        cur.execute("SELECT 1")
    with pytest.raises(apidriver.InterfaceError, match="closed"):
        conn.cursor()
    emu.clear_faults()
    baseline.restored(timeout=5)  # the stalled request ends with its Timeout


def test_close_from_another_thread_between_fetches(emu: Emulator) -> None:
    conn = connect_to(emu, PageSize=5)
    cur = conn.cursor().execute("SELECT id FROM Jobs")
    assert cur.fetchone() is not None
    closer = threading.Thread(target=conn.close)
    closer.start()
    closer.join(5)
    assert conn.closed
    with pytest.raises(apidriver.InterfaceError, match="closed"):
        cur.fetchone()


def test_cancel_during_a_multi_row_delete_waits_for_the_write_and_reports(emu: Emulator) -> None:
    with httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"}) as api:
        for _ in range(4):
            api.post("/jobs", json={"tag": "batch", "tasks": CONVERSION_TASKS})
    with connect_to(emu, Timeout=5) as conn:
        order = [r[0] for r in conn.cursor().execute("SELECT id FROM Jobs WHERE tag = 'batch'").fetchall()]
        emu.add_fault("stall", path=f"/v2/jobs/{order[1]}", method="DELETE", count=1, stall_seconds=1)
        cur = conn.cursor()
        running = Running(lambda: cur.execute("DELETE FROM Jobs WHERE tag = 'batch'"))
        wait_until(lambda: emu.pending_requests() or None, timeout=5, what="the stalled DELETE")
        conn.interrupt()
        running.join()
        error = running.error
        assert isinstance(error, apidriver.QueryCancelledError), repr(error)
        # the DELETE on the wire was waited for (it took effect), nothing was sent after the cancel
        assert error.deleted == order[:2]  # type: ignore[attr-defined]
        assert error.failed == order[2] and error.not_attempted == order[3:]  # type: ignore[attr-defined]
        assert "not undone" in str(error) and "not attempted" in str(error)
        left = [r[0] for r in conn.cursor().execute("SELECT id FROM Jobs WHERE tag = 'batch'").fetchall()]
    assert sorted(left) == sorted(order[2:])
