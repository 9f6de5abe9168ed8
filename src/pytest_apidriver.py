"""apidriver's pytest plugin: test code that calls CloudConvert against a local emulator (docs/testing.md).

Registered as ``apidriver`` through the ``pytest11`` entry point (disable it
with ``-p no:apidriver``). Every fixture is named ``cloudconvert_*``:

- ``cloudconvert_server`` (session): the running :class:`~apidriver.emulator.Emulator`,
  started the first time a test asks for it; its URL and key never change;
- ``cloudconvert_emulator``: that emulator, reset for this test: a new account
  (empty, or the sample jobs of ``@pytest.mark.cloudconvert(jobs=N, seed=S)``),
  an empty request log, the faults of ``@pytest.mark.cloudconvert_fault(...)``,
  the clock at wall-clock time. Its methods are the emulator's: ``requests()``,
  ``add_fault()``, ``advance_clock()``, ``clock()``, ``deliveries()`` ...;
- ``cloudconvert_jobs``: :class:`apidriver.testing.Jobs`, to put chosen jobs in the account;
- ``cloudconvert_connection``: an ``apidriver`` DB-API connection to it;
- ``cloudconvert_engine``: a SQLAlchemy engine (``cloudconvert://``) on it;
- ``cloudconvert_sdk``: the official ``cloudconvert`` SDK, configured for it.

This module lives outside the ``apidriver`` package and imports nothing but
pytest until a fixture runs: pytest imports every installed plugin at start,
and ``import apidriver`` (httpx, APSW) would cost every test run in the
environment a few hundred milliseconds, used or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from apidriver.emulator import Emulator
    from apidriver.testing import Jobs

__all__ = [
    "cloudconvert_connection",
    "cloudconvert_emulator",
    "cloudconvert_engine",
    "cloudconvert_jobs",
    "cloudconvert_sdk",
    "cloudconvert_server",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cloudconvert(jobs=0, seed=0): the emulated CloudConvert account of this test starts with "
        "`jobs` seeded sample jobs (apidriver's cloudconvert_emulator fixture)",
    )
    config.addinivalue_line(
        "markers",
        "cloudconvert_fault(kind, path='/', method=None, count=1, rate=None, ...): make matching requests "
        "to the emulated CloudConvert API fail (500, 502, 503, 429, drop, stall, malformed); repeatable",
    )


@pytest.fixture(scope="session")
def cloudconvert_server() -> Iterator[Emulator]:
    """The session's CloudConvert emulator (started on first use); its URL and key stay the same all session."""
    from apidriver.testing import start_emulator

    emulator = start_emulator()
    yield emulator
    emulator.stop()


@pytest.fixture
def cloudconvert_emulator(cloudconvert_server: Emulator, request: pytest.FixtureRequest) -> Emulator:
    """The CloudConvert emulator, reset for this test: account, request log, faults, clock.

    ``@pytest.mark.cloudconvert(jobs=30, seed=7)`` seeds sample jobs;
    ``@pytest.mark.cloudconvert_fault("503", path="/v2/jobs", count=2)`` adds faults.
    """
    account = request.node.get_closest_marker("cloudconvert")
    options = dict(account.kwargs) if account is not None else {}
    unknown = sorted(set(options) - {"jobs", "seed"}) + [repr(a) for a in (account.args if account is not None else ())]
    if unknown:
        raise pytest.UsageError(f"@pytest.mark.cloudconvert takes jobs= and seed=, not {', '.join(unknown)}")
    cloudconvert_server.reset(jobs=int(options.get("jobs", 0)), seed=int(options.get("seed", 0)))
    for fault in reversed(list(request.node.iter_markers("cloudconvert_fault"))):  # the closest last, in file order
        cloudconvert_server.add_fault(*fault.args, **fault.kwargs)
    return cloudconvert_server


@pytest.fixture
def cloudconvert_jobs(cloudconvert_emulator: Emulator) -> Iterator[Jobs]:
    """Puts chosen jobs in this test's account: ``.finished()``, ``.failed()``, ``.waiting()``, ``.create(tasks)``."""
    from apidriver.testing import Jobs

    jobs = Jobs(cloudconvert_emulator)
    yield jobs
    jobs.close()


@pytest.fixture
def cloudconvert_connection(cloudconvert_emulator: Emulator) -> Iterator[Any]:
    """An ``apidriver`` DB-API connection to this test's emulated account (closed after the test)."""
    import apidriver

    connection = apidriver.connect(APIKey=cloudconvert_emulator.api_key, BaseURL=cloudconvert_emulator.base_url)
    yield connection
    connection.close()


@pytest.fixture
def cloudconvert_engine(cloudconvert_emulator: Emulator) -> Iterator[Any]:
    """A SQLAlchemy engine (``cloudconvert://``) on this test's emulated account (disposed after the test)."""
    from sqlalchemy import create_engine

    from apidriver.testing import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(cloudconvert_emulator))
    yield engine
    engine.dispose()


@pytest.fixture
def cloudconvert_sdk(cloudconvert_emulator: Emulator) -> Iterator[Any]:
    """The official ``cloudconvert`` SDK module, its default client pointed at this test's emulator (and back after)."""
    try:
        import cloudconvert  # type: ignore[import-untyped,unused-ignore]
        import cloudconvert.cloudconvertrestclient as rest  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        pytest.fail("cloudconvert_sdk needs the official SDK: pip install cloudconvert")
    from apidriver.testing import sdk_settings

    before = rest.__client__
    cloudconvert.configure(**sdk_settings(cloudconvert_emulator))
    yield cloudconvert
    rest.__client__ = before
