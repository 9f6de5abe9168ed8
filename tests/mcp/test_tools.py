"""The tools, resources and prompts of a read-only ``apidriver mcp`` on stdio, against an emulator.

One server for the module (started with --default-rows 10 --max-rows 25),
talked to with the MCP SDK's client, as an assistant would.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from apidriver.cli.describe import all_tables, find, markdown, names
from apidriver.cli.output import json_value
from apidriver.emulator import Emulator
from apidriver.mcp.catalogue import example
from apidriver.profiles import load

from ..cli.conftest import connection
from ..conftest import connect_to
from .conftest import Session, stdio_session, text_of

pytestmark = pytest.mark.anyio
PROFILE = load("CloudConvert")
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
async def session(shared_emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Session]:
    arguments = ("--connect", connection(shared_emulator), "--default-rows", "10", "--max-rows", "25")
    async with stdio_session(tmp_path_factory.mktemp("mcp"), *arguments) as session:
        yield session


def dbapi_rows(emulator: Emulator, sql: str, parameters: Any = None) -> list[list[Any]]:
    """The same statement through the DB-API, values as the tool gives them."""
    with connect_to(emulator) as conn:
        cursor = conn.cursor().execute(sql, parameters)
        types = [d[1] for d in cursor.description]
        return [[json_value(v, t) for v, t in zip(row, types)] for row in cursor.fetchall()]


async def test_tools_have_schemas_and_read_only_annotations(session: Session) -> None:
    tools = {t.name: t for t in (await session.client.list_tools()).tools}
    assert set(tools) == {"list_tables", "describe_table", "run_query"}
    run = tools["run_query"]
    assert run.input_schema["required"] == ["sql"]
    assert set(run.input_schema["properties"]) == {"sql", "parameters", "max_rows"}
    assert run.output_schema is None  # one compact JSON text, described in the tool's description
    assert all(f"{field} (" in (run.description or "") for field in ("columns", "rows", "row_count", "truncated", "requests", "rows_affected"))
    assert tools["describe_table"].output_schema is not None and tools["list_tables"].output_schema is not None
    assert tools["describe_table"].input_schema["required"] == ["table"]
    for tool in tools.values():
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True and tool.annotations.destructive_hint is False
    assert "read-only" in (session.client.instructions or "")


async def test_list_tables_names_every_table_and_procedure(session: Session) -> None:
    result = await session.call("list_tables")
    listed = result.structured_content
    assert listed is not None
    assert [t["name"] for t in listed["tables"]] == [t.name for t in all_tables(PROFILE)]
    assert [p["name"] for p in listed["procedures"]] == [p.name for p in PROFILE.procedures]
    jobs = listed["tables"][0]
    assert jobs == {"name": "Jobs", "kind": "table", "description": PROFILE.tables[0].description, "pushdown": ["id", "tag", "status"], "writes": ["INSERT", "DELETE"]}
    assert {p["name"]: p["writes"] for p in listed["procedures"]}["CreateJob"] is True
    text = text_of(result)
    assert "- Jobs (table): Conversion jobs" in text and "- CancelTask(id): " in text and "[changes the account]" in text


async def test_describe_table_for_every_table_is_the_reference_with_an_example(session: Session) -> None:
    for name in names(PROFILE):
        item = find(PROFILE, name)
        assert item is not None
        result = await session.call("describe_table", table=name.lower())
        assert not result.is_error, text_of(result)
        described = result.structured_content
        assert described is not None
        assert text_of(result) == markdown(PROFILE, item) + f"\nExample: `{example(PROFILE, item)}`\n"
        assert described["name"] == name
        assert [c["name"] for c in described["columns"]] == [c.name for c in item.columns]
        if described["kind"] == "procedure":
            assert described["signature"].startswith(f"{name}(")
            continue
        assert described["primary_key"] == list(getattr(item, "key", ()))
        # The example is a real statement: it runs (its ? filled with a value no row has).
        sql = described["example"]
        outcome = await session.query(sql, ["no-such-value"] * sql.count("?") or None)
        assert outcome["columns"]
    tasks = (await session.call("describe_table", table="Tasks")).structured_content
    assert tasks is not None
    job_id = next(c for c in tasks["columns"] if c["name"] == "job_id")
    assert job_id["references"] == "Jobs.id" and "filter[job_id]" in job_id["pushdown"]
    assert next(c for c in tasks["columns"] if c["name"] == "message")["pushdown"] is None


async def test_describe_an_unknown_table_is_a_tool_error_listing_the_names(session: Session) -> None:
    result = await session.call("describe_table", table="Invoices")
    assert result.is_error
    assert "No table or procedure 'Invoices'. Known: Jobs, Tasks," in text_of(result)


async def test_resources_are_the_table_reference(session: Session) -> None:
    resources = {str(r.uri): r for r in (await session.client.list_resources()).resources}
    expected = {f"apidriver://tables/{name}" for name in names(PROFILE)} | {"apidriver://tables"}
    assert set(resources) == expected
    assert all(r.mime_type == "text/markdown" and r.description for r in resources.values())
    templates = (await session.client.list_resource_templates()).resource_templates
    assert [t.uri_template for t in templates] == ["apidriver://tables/{name}"]
    for name in names(PROFILE):
        item = find(PROFILE, name)
        assert item is not None
        read = await session.client.read_resource(f"apidriver://tables/{name}")
        assert read.contents[0].text.startswith(markdown(PROFILE, item))  # type: ignore[union-attr]
    lower = await session.client.read_resource("apidriver://tables/taskfiles")  # the template, any case
    assert lower.contents[0].text.startswith("## TaskFiles")  # type: ignore[union-attr]
    whole = await session.client.read_resource("apidriver://tables")
    assert whole.contents[0].text == Path(__file__).resolve().parents[2].joinpath("docs", "tables.md").read_text()  # type: ignore[union-attr]
    with pytest.raises(MCPError, match="No table or procedure 'Nope'"):
        await session.client.read_resource("apidriver://tables/Nope")


def statements(prompt: str) -> tuple[list[str], dict[str, Any]]:
    """The SQL statements a prompt asks for, and the parameters it gives them."""
    parameters = json.loads(re.search(r"with the parameters (\{.*?\}):", prompt).group(1))  # type: ignore[union-attr]
    found = re.findall(r"SELECT\b.*?(?=\n\d\. |\n\n|\Z)", prompt, re.DOTALL)
    return [" ".join(s.split()) for s in found], parameters


async def test_prompts_give_statements_that_run(session: Session, shared_emulator: Emulator) -> None:
    prompts = {p.name: p for p in (await session.client.list_prompts()).prompts}
    assert set(prompts) == {"explain_failed_jobs", "credits_used"}
    assert [a.name for a in prompts["explain_failed_jobs"].arguments or []] == ["start", "end", "tag"]
    cases = [("explain_failed_jobs", {}), ("explain_failed_jobs", {"tag": "invoices", "start": "2020-01-01"}), ("credits_used", {"group_by": "operation", "start": "2020-01-01T00:00:00Z"}), ("credits_used", {})]
    for name, arguments in cases:
        prompt = await session.client.get_prompt(name, arguments)
        text = prompt.messages[0].content.text  # type: ignore[union-attr]
        sqls, parameters = statements(text)
        assert len(sqls) >= 2
        for sql in sqls:
            used = {k: v for k, v in parameters.items() if f":{k}" in sql}
            outcome = await session.query(sql, used or None)
            assert outcome["columns"]
    failed = await session.client.get_prompt("explain_failed_jobs", {"start": "2020-01-01", "end": "2100-01-01"})
    sql, parameters = statements(failed.messages[0].content.text)  # type: ignore[union-attr]
    by_cause = await session.query(sql[0], parameters)
    expected = dbapi_rows(shared_emulator, sql[0], parameters)
    assert by_cause["rows"] == expected[:10] and expected
    with pytest.raises(MCPError, match="group_by must be tag or operation"):
        await session.client.get_prompt("credits_used", {"group_by": "engine"})
    with pytest.raises(MCPError, match="start must be an ISO 8601 date"):
        await session.client.get_prompt("credits_used", {"start": "last week"})


async def test_a_join_with_an_aggregate_answers_as_the_dbapi(session: Session, shared_emulator: Emulator) -> None:
    sql = (
        "SELECT j.status, t.operation, count(*) AS tasks, sum(t.credits) AS credits FROM Jobs j JOIN Tasks t ON t.job_id = j.id "
        "GROUP BY j.status, t.operation ORDER BY j.status, t.operation"
    )
    result = await session.query(sql, max_rows=25)
    assert result["columns"] == ["status", "operation", "tasks", "credits"]
    assert result["rows"] == dbapi_rows(shared_emulator, sql)
    assert result["truncated"] is False and result["row_count"] == len(result["rows"])
    assert result["requests"] >= 1 and result["request_log"][0].startswith("GET http://127.0.0.1:")
    assert result["rows_affected"] is None and result["elapsed_ms"] > 0


async def test_parameters_by_position_and_by_name(session: Session, shared_emulator: Emulator) -> None:
    expected = dbapi_rows(shared_emulator, "SELECT id FROM Jobs WHERE status = 'error' ORDER BY id")
    positional = await session.query("SELECT id FROM Jobs WHERE status = ? ORDER BY id", ["error"])
    named = await session.query("SELECT id FROM Jobs WHERE status = :status ORDER BY id", {"status": "error"})
    assert positional["rows"] == named["rows"] == expected[:10] and expected
    assert all("filter%5Bstatus%5D=error" in line for line in positional["request_log"])  # the filter went to the API
    one = expected[0][0]
    looked_up = await session.query("SELECT id, status FROM Jobs WHERE id = ?", [one])
    assert looked_up["rows"] == [[one, "error"]] and looked_up["requests"] == 1


async def test_row_cap_default_maximum_and_truncation(session: Session) -> None:
    default = await session.query("SELECT id FROM Jobs")  # 60 jobs, --default-rows 10
    assert len(default["rows"]) == 10 and default["truncated"] is True and default["row_count"] is None and default["max_rows"] == 10
    assert "max_rows=25" in default["note"]
    asked = await session.query("SELECT id FROM Jobs", max_rows=20)
    assert len(asked["rows"]) == 20 and asked["truncated"] is True and asked["rows"][:10] == default["rows"]
    capped = await session.query("SELECT id FROM Jobs", max_rows=5000)  # --max-rows 25 wins
    assert len(capped["rows"]) == 25 and capped["max_rows"] == 25 and capped["truncated"] is True
    exact = await session.query("SELECT id FROM Jobs LIMIT 10")
    assert len(exact["rows"]) == 10 and exact["truncated"] is False and exact["row_count"] == 10 and "note" not in exact
    counted = await session.query("SELECT count(*) FROM Jobs")
    assert counted["rows"] == [[60]] and counted["row_count"] == 1


async def test_timestamps_are_iso_utc_text_and_json_columns_nested(session: Session, shared_emulator: Emulator) -> None:
    result = await session.query("SELECT id, created_at, ended_at, tasks FROM Jobs WHERE status = 'finished' LIMIT 3")
    for job_id, created, ended, tasks in result["rows"]:
        parsed = dt.datetime.fromisoformat(created)
        assert created.endswith("+00:00") and parsed.utcoffset() == dt.timedelta(0)
        assert dt.datetime.fromisoformat(ended) >= parsed
        assert isinstance(tasks, list) and all(t["job_id"] == job_id for t in tasks)
    raw = json.loads(text_of(await session.call("run_query", sql="SELECT created_at FROM Jobs LIMIT 1")))
    assert list(raw) == ["columns", "rows", "rows_affected", "truncated", "row_count", "max_rows", "requests", "request_log", "elapsed_ms"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", raw["rows"][0][0])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sql": "SELEC id FROM Jobs"}, 'ProgrammingError: near "SELEC": syntax error'),
        ({"sql": "SELECT nope FROM Jobs"}, "ProgrammingError: no such column: nope"),
        ({"sql": "SELECT * FROM Invoices"}, "ProgrammingError: no such table: Invoices"),
        ({"sql": "SELECT * FROM Jobs WHERE id = ?"}, "the statement has 1 parameter (?) and no value was given; pass values in `parameters`"),
        ({"sql": "SELECT * FROM Jobs WHERE id = :id", "parameters": {"job": "x"}}, "no value for the parameter id"),
        ({"sql": "SELECT 1; SELECT 2"}, "execute() runs one statement at a time"),
        ({"sql": "  "}, "sql is empty"),
    ],
)
async def test_bad_statements_are_tool_errors_with_the_dbapi_message(session: Session, arguments: dict[str, Any], message: str) -> None:
    result = await session.call("run_query", **arguments)
    assert result.is_error
    assert message in text_of(result)


async def test_max_rows_below_one_is_refused_by_the_schema(session: Session) -> None:
    result = await session.call("run_query", sql="SELECT 1", max_rows=0)
    assert result.is_error and "max_rows" in text_of(result)


REFUSED = [
    ("INSERT INTO Jobs (tag, tasks) VALUES ('x', '{}')", "INSERT on Jobs refused: the connection is read-only (ReadOnly=true)"),
    ("DELETE FROM Jobs WHERE status = 'error'", "DELETE on Jobs refused: the connection is read-only"),
    ("DELETE FROM Webhooks", "DELETE on Webhooks refused"),
    ("INSERT INTO Tasks (operation, payload) VALUES ('import/url', '{}')", "INSERT on Tasks refused"),
    ("SELECT * FROM CreateJob('{}')", "CreateJob changes data and the connection is read-only (ReadOnly=true)"),
    ("SELECT * FROM CancelTask('t')", "CancelTask changes data"),
    ("SELECT * FROM RetryTask('t')", "RetryTask changes data"),
    ("SELECT * FROM DeleteJob('j')", "DeleteJob changes data"),
    ("SELECT * FROM ConvertFile('/etc/hostname', 'pdf')", "ConvertFile changes data"),
    ("WITH x AS (SELECT id FROM Jobs) SELECT * FROM x, CancelTask(x.id)", "CancelTask changes data"),
    ("UPDATE Jobs SET tag = 'x'", "UPDATE on Jobs refused"),
    ("REPLICATE", "REPLICATE needs a cache database"),  # no cache here; with one, ReadOnly refuses it (test_cache.py)
]


async def test_read_only_refuses_writes_and_account_changing_procedures(session: Session, shared_emulator: Emulator) -> None:
    before = len(shared_emulator.requests())
    for sql, message in REFUSED:
        result = await session.call("run_query", sql=sql)
        assert result.is_error, sql
        assert message in text_of(result), (sql, text_of(result))
    sent = shared_emulator.requests()[before:]
    assert [r for r in sent if r["method"] in WRITES] == []
    assert len(sent) <= 1  # at most the WITH's read of Jobs: nothing runs once a procedure is refused


async def test_files_of_the_server_are_out_of_reach(session: Session, tmp_path: Path) -> None:
    target = tmp_path / "other.sqlite"
    for sql in (f"ATTACH '{target}' AS other", f"VACUUM INTO '{target}'", "DETACH cache"):
        result = await session.call("run_query", sql=sql)
        assert result.is_error
        assert "refused by apidriver mcp: statements may not open, create or detach database files" in text_of(result)
    assert not target.exists()
    scratch = await session.query("CREATE TEMP TABLE scratch AS SELECT id FROM Jobs WHERE status = 'error'")
    assert scratch["columns"] == [] and scratch["rows_affected"] is not None
    assert (await session.query("SELECT count(*) FROM scratch"))["rows"][0][0] >= 1


async def test_concurrent_calls_take_turns_on_the_connection(session: Session) -> None:
    statements = [f"SELECT count(*) FROM Jobs WHERE status = '{status}'" for status in ("error", "finished", "waiting", "processing")]
    expected = [await session.query(sql) for sql in statements]
    answers: dict[str, Any] = {}

    async def run(sql: str) -> None:
        answers[sql] = await session.query(sql)

    async with anyio.create_task_group() as group:  # a connection serves one statement at a time: the server queues them
        for sql in statements * 2:
            group.start_soon(run, sql)
    assert [answers[sql]["rows"] for sql in statements] == [e["rows"] for e in expected]
