"""apidriver's pytest plugin (pytest_apidriver, entry point pytest11 "apidriver"), run by pytest itself
through ``pytester``: the test files below are what a user of the plugin writes; each asserts real
behaviour of the emulator behind the fixtures, and the outer test checks they all passed.

Each run is a fresh process, as a user's is: an in-process run would also drop from ``sys.modules``
whatever it imported first (httpcore's backends, say), and the next import elsewhere in this process
would make new exception classes that httpx no longer recognises."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parents[1]

USAGE = '''
import datetime as dt

import httpx
import pytest
from sqlalchemy import text

from apidriver.testing import TASK_SECONDS

seen = {}


def test_an_empty_account_and_its_request_log(cloudconvert_emulator, cloudconvert_connection):
    cursor = cloudconvert_connection.cursor()
    cursor.execute("SELECT count(*) FROM Jobs")
    assert cursor.fetchone() == (0,)
    assert [(r["method"], r["path"], r["status"]) for r in cloudconvert_emulator.requests()] == [("GET", "/v2/jobs", 200)]
    seen["server"] = cloudconvert_emulator


@pytest.mark.cloudconvert(jobs=12, seed=3)
def test_sample_jobs_through_sqlalchemy(cloudconvert_engine, cloudconvert_server, cloudconvert_emulator):
    with cloudconvert_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM Jobs")).scalar_one() == 12
        statuses = {s for (s,) in conn.execute(text("SELECT DISTINCT status FROM Jobs"))}
    assert statuses <= {"finished", "error", "waiting"} and "finished" in statuses
    assert cloudconvert_emulator is cloudconvert_server is seen["server"]  # one server for the session


def test_chosen_jobs(cloudconvert_jobs, cloudconvert_connection):
    done = cloudconvert_jobs.finished("invoice.docx", tag="invoices")
    failed = cloudconvert_jobs.failed("scan.pdf", "png", tag="scans")
    waiting = cloudconvert_jobs.waiting("photo.jpg")
    cursor = cloudconvert_connection.cursor()
    cursor.execute("SELECT id, status, tag FROM Jobs")
    assert {row[0]: row[1:] for row in cursor.fetchall()} == {
        done["id"]: ("finished", "invoices"), failed["id"]: ("error", "scans"), waiting["id"]: ("waiting", None),
    }
    cursor.execute("SELECT operation, code FROM Tasks WHERE job_id = ? ORDER BY operation", (failed["id"],))
    assert cursor.fetchall() == [("convert", "INPUT_TASK_FAILED"), ("export/url", "INPUT_TASK_FAILED"), ("import/url", "DOWNLOAD_FAILED")]
    cursor.execute("SELECT json_extract(result, '$.files[0].filename') FROM Tasks WHERE job_id = ? AND operation = 'export/url'", (done["id"],))
    assert cursor.fetchone() == ("invoice.pdf",)


def test_time_moves_on_when_told(cloudconvert_emulator, cloudconvert_jobs):
    job = cloudconvert_jobs.create(tag="later")
    assert job["status"] == "waiting"
    before = cloudconvert_emulator.clock()
    cloudconvert_emulator.advance_clock(2 * 86400)  # two days: the job runs, ends, and is deleted after 24 h
    assert cloudconvert_emulator.clock() - before >= dt.timedelta(days=2)
    key = {"Authorization": "Bearer " + cloudconvert_emulator.api_key}
    assert httpx.get(cloudconvert_emulator.api_url + "/jobs/" + job["id"], headers=key).status_code == 404


def test_each_test_starts_over(cloudconvert_emulator):
    assert cloudconvert_emulator.requests() == []
    assert abs(cloudconvert_emulator.clock() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)
    key = {"Authorization": "Bearer " + cloudconvert_emulator.api_key}
    assert httpx.get(cloudconvert_emulator.api_url + "/jobs", headers=key).json()["data"] == []


@pytest.mark.cloudconvert_fault("503", path="/v2/jobs", count=1)
def test_a_fault_the_driver_retries(cloudconvert_emulator, cloudconvert_connection):
    cursor = cloudconvert_connection.cursor()
    cursor.execute("SELECT count(*) FROM Jobs")
    assert cursor.fetchone() == (0,)
    assert [(r["status"], r["fault"]) for r in cloudconvert_emulator.requests()] == [(503, "503"), (200, None)]


@pytest.mark.cloudconvert_fault("500", path="/v2/jobs", method="POST", count=1)
@pytest.mark.cloudconvert_fault("429", path="/v2/jobs", method="POST", count=1, retry_after=0)
def test_faults_apply_in_the_order_written(cloudconvert_emulator):
    key = {"Authorization": "Bearer " + cloudconvert_emulator.api_key}
    answers = [httpx.post(cloudconvert_emulator.api_url + "/jobs", headers=key, json={}).status_code for _ in range(3)]
    assert answers == [500, 429, 422]  # then the emulator itself: a job needs tasks


def test_the_official_sdk(cloudconvert_sdk, cloudconvert_emulator):
    job = cloudconvert_sdk.Job.create(payload={"tag": "sdk", "tasks": {
        "import": {"operation": "import/url", "url": "https://files.example.com/slides.pptx"},
        "convert": {"operation": "convert", "input": "import", "output_format": "pdf"},
    }})
    assert cloudconvert_sdk.Job.wait(id=job["id"])["status"] == "finished"
    assert {r["path"] for r in cloudconvert_emulator.requests()} == {"/v2/jobs", "/sync/v2/jobs/" + job["id"]}
    assert TASK_SECONDS < 1
'''


def test_the_fixtures_as_a_user_writes_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_usage=USAGE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_a_misspelt_marker_argument_is_an_error_not_an_empty_account(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.cloudconvert(job=5)
        def test_typo(cloudconvert_emulator):
            pass

        @pytest.mark.cloudconvert(5)
        def test_positional(cloudconvert_emulator):
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*@pytest.mark.cloudconvert takes jobs= and seed=, not job", "*takes jobs= and seed=, not 5"])


def test_runs_that_do_not_use_it_never_import_apidriver(pytester: pytest.Pytester) -> None:
    """The plugin is loaded from its entry point in a fresh process, registers its markers (--strict-markers
    passes), and imports nothing of apidriver; -p no:apidriver turns it off."""
    pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.cloudconvert(jobs=3)
        def test_plain():
            assert "pytest_apidriver" in sys.modules
            assert not [m for m in sys.modules if m == "apidriver" or m.startswith("apidriver.")]
        """
    )
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    pytester.makepyfile(test_off="def test_off(cloudconvert_emulator):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:apidriver", "-p", "no:cacheprovider", "test_off.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'cloudconvert_emulator' not found*"])


def fixture_names(path: Path) -> set[str]:
    """The functions a module decorates with ``pytest.fixture``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef) and any("fixture" in ast.unparse(d) for d in node.decorator_list):
            names.add(node.name)
    return names


def test_the_plugins_fixtures_and_ours_never_share_a_name() -> None:
    """Our own suite loads the plugin too: a conftest fixture of the same name would silently replace one."""
    import pytest_apidriver

    plugin = fixture_names(Path(pytest_apidriver.__file__))
    assert plugin == set(pytest_apidriver.__all__) and all(n.startswith("cloudconvert_") for n in plugin)
    ours = set().union(*(fixture_names(p) for p in TESTS.rglob("conftest.py")))
    assert ours and not ours & plugin
