"""The engine spec inside Apache Superset itself: run where Superset is installed (it is no dependency
of ours; skipped elsewhere). A throw-away environment for it::

    python3 -m venv /tmp/ss && /tmp/ss/bin/pip install apache-superset==6.1.0 cachetools 'flask-caching<2.4' pytest -e .
    /tmp/ss/bin/python -m pytest tests/sqlalchemy/test_superset_spec.py

(Superset 6.1.0's wheel lacks its ``cachetools`` dependency, and its app fails to start with
flask-caching 2.4 or later.)"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

superset = pytest.importorskip("superset", reason="Apache Superset is not installed")

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlglot.dialects.dialect import Dialects
from superset.db_engine_specs import load_engine_specs
from superset.db_engine_specs.lib import diagnose
from superset.db_engine_specs.sqlite import SqliteEngineSpec
from superset.errors import SupersetErrorType
from superset.sql.parse import SQLGLOT_DIALECTS, SQLScript

import apidriver
from apidriver.emulator import Emulator

from .test_superset import GRAINS, as_text


@pytest.fixture(scope="module")
def app_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Superset app (its config, translations, encrypted fields) on a throw-away metadata database."""
    from superset.app import create_app

    folder = tmp_path_factory.mktemp("superset")
    config = Path(folder, "superset_config.py")
    config.write_text(f"SECRET_KEY = 'test-only'\nSQLALCHEMY_DATABASE_URI = 'sqlite:///{folder}/meta.db'\n")
    before = os.environ.get("SUPERSET_CONFIG_PATH")
    os.environ["SUPERSET_CONFIG_PATH"] = str(config)
    try:
        with create_app().app_context():
            yield
    finally:
        if before is None:
            os.environ.pop("SUPERSET_CONFIG_PATH", None)
        else:
            os.environ["SUPERSET_CONFIG_PATH"] = before


@pytest.fixture(scope="module")
def spec(app_context: None) -> type:
    """The spec as Superset finds it: through the superset.db_engine_specs entry point."""
    (found,) = [s for s in load_engine_specs() if s.engine == "cloudconvert"]
    return found


def test_loading_the_spec_makes_superset_parse_our_engines_as_sqlite(spec: type) -> None:
    assert spec.__module__ == "apidriver.sqlalchemy.superset"
    assert SQLGLOT_DIALECTS["cloudconvert"] == SQLGLOT_DIALECTS["api"] == Dialects.SQLITE


def test_the_recorded_grains_are_supersets(spec: type) -> None:
    grains = {(str(g) if g is not None else None): sql for g, sql in spec._time_grain_expressions.items()}
    assert grains == GRAINS == {(str(g) if g is not None else None): sql for g, sql in SqliteEngineSpec._time_grain_expressions.items()}


@pytest.mark.parametrize("grain", list(GRAINS), ids=str)
def test_superset_parses_every_grain_of_the_spec_and_runs_what_it_formats(spec: type, engine: Engine, grain: str | None) -> None:
    written = f"SELECT {spec._time_grain_expressions[grain].format(col='created_at')} AS t, count(*) AS n FROM Jobs GROUP BY 1"
    formatted = SQLScript(written, spec.engine).format()  # raises on a parse error, as charts and SQL Lab do
    with engine.connect() as conn:
        expected = {as_text(t): n for t, n in conn.execute(text(written))}
        assert {as_text(t): n for t, n in conn.execute(text(formatted))} == expected


def test_a_wrong_key_is_a_password_error_with_the_drivers_message(spec: type, make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator()
    connection = apidriver.connect(APIKey="sk-superset-wrong-99", BaseURL=emu.base_url)
    with pytest.raises(apidriver.AuthenticationError) as raised:
        connection.cursor().execute("SELECT id FROM Jobs")
    connection.close()
    # Superset's test connection: DBAPIError(str(error), None, None); a chart: the error itself.
    for error in (DBAPIError(str(raised.value), None, None), raised.value):  # type: ignore[arg-type]
        (found,) = spec.extract_errors(error)
        assert found.error_type == SupersetErrorType.CONNECTION_INVALID_PASSWORD_ERROR
        assert found.message.startswith("The API rejected the credentials (401 UNAUTHENTICATED).")
        assert "builtins" not in found.message and "sk-superset-wrong-99" not in found.message
        assert found.extra["invalid"] == ["password"]


def test_superset_sees_the_spec_can_cancel(spec: type) -> None:
    assert spec.has_implicit_cancel() is True
    assert diagnose(spec)["query_cancelation"] is True
