"""The cache: Offline over a synced cache answers with no request at all; a read-only server refuses REPLICATE and CACHE."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import apidriver
from apidriver.emulator import Emulator

from ..cli.conftest import connection
from ..conftest import connect_to
from .conftest import stdio_session, text_of

pytestmark = pytest.mark.anyio
BY_STATUS = "SELECT status, count(*) AS jobs FROM Jobs GROUP BY status ORDER BY status"
JOIN = "SELECT j.tag, count(t.id) AS tasks FROM Jobs j JOIN Tasks t ON t.job_id = j.id GROUP BY j.tag ORDER BY j.tag"


@pytest.fixture
def synced(make_emulator: Callable[..., Emulator], tmp_path: Path) -> tuple[Emulator, Path]:
    emulator = make_emulator(jobs=24, seed=5, rate_limit=0)
    path = tmp_path / "cache.sqlite"
    apidriver.sync(connect_to(emulator), to=f"sqlite:///{path}")
    return emulator, path


def live(emulator: Emulator, sql: str) -> list[list[object]]:
    with connect_to(emulator) as conn:
        return [list(row) for row in conn.cursor().execute(sql).fetchall()]


async def test_offline_over_a_synced_cache_sends_no_request(synced: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, path = synced
    expected = [live(emulator, BY_STATUS), live(emulator, JOIN)]
    emulator.clear_requests()
    async with stdio_session(tmp_path, "--connect", f"Offline=true;CacheLocation={path}") as session:  # no API key at all
        assert "nothing is sent to the API" in (session.client.instructions or "")
        answers = [await session.query(BY_STATUS), await session.query(JOIN)]
        assert [a["rows"] for a in answers] == expected
        assert [a["requests"] for a in answers] == [0, 0]
        refused = await session.call("run_query", sql="REPLICATE")
        assert refused.is_error and "Offline=true: REPLICATE needs the API" in text_of(refused)
    assert emulator.requests() == []


async def test_read_only_refuses_replicate_and_cache(synced: tuple[Emulator, Path], tmp_path: Path) -> None:
    emulator, path = synced
    before = path.read_bytes()
    emulator.clear_requests()
    async with stdio_session(tmp_path, "--connect", connection(emulator, CacheLocation=str(path))) as session:
        for sql in ("REPLICATE", "REPLICATE Jobs", "CACHE SELECT * FROM Jobs"):
            refused = await session.call("run_query", sql=sql)
            assert refused.is_error
            assert f"{sql.split()[0]} writes to the cache and the connection is read-only (ReadOnly=true). Nothing was sent." in text_of(refused)
        cached = await session.query("SELECT count(*) FROM cache.Jobs")
        assert cached["rows"] == [[24]] and cached["requests"] == 0
    assert emulator.requests() == []
    assert path.read_bytes() == before


async def test_auto_cache_syncs_once_then_answers_from_the_cache(make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emulator = make_emulator(jobs=24, seed=5, rate_limit=0)
    path = tmp_path / "auto.sqlite"
    async with stdio_session(tmp_path, "--connect", connection(emulator, AutoCache="true", CacheLocation=str(path))) as session:
        first = await session.query(BY_STATUS)
        again = await session.query(BY_STATUS)
        assert first["rows"] == again["rows"] == live(emulator, BY_STATUS)
        assert first["requests"] >= 1 and again["requests"] == 0  # synced by the first, read from the cache by the second
        fresh = await session.query("SELECT count(*) FROM live.Jobs")
        assert fresh["rows"] == [[24]] and fresh["requests"] == 1
    assert path.exists()
