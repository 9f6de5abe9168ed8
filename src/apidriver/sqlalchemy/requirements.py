"""What the dialects support, for SQLAlchemy's dialect suite (``[sqla_testing] requirement_cls``).

The suite's tables are local tables: SQLite's own, in each connection's
database. So the dialect supports what SQLAlchemy's SQLite dialect
supports, and each exclusion below says why a local table or this driver
differs from pysqlite on a ``sqlite://`` database. Only the test plugin
imports this module.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

from .compat import SQLALCHEMY_1

__all__ = ["Requirements"]


class Requirements(SuiteRequirements):
    """SQLAlchemy's suite requirements, as they apply to the ``cloudconvert`` and ``api`` dialects."""

    # -- SQLite's own limits (as for pysqlite): the suite's defaults assume other databases ----------

    @property
    def parens_in_union_contained_select_w_limit_offset(self) -> Any:
        """SQLite's grammar has no parenthesized SELECT in a UNION: ``(SELECT ... LIMIT 1) UNION ...``."""
        return exclusions.closed()

    @property
    def parens_in_union_contained_select_wo_limit_offset(self) -> Any:
        """SQLite's grammar has no parenthesized SELECT in a UNION: ``(SELECT ...) UNION (SELECT ...)``."""
        return exclusions.closed()

    @property
    def reflect_table_options(self) -> Any:
        """Open: SQLite's dialect reflects table options (WITHOUT ROWID, STRICT) of local tables."""
        return exclusions.open()

    # -- timestamps: aware UTC datetimes on this dialect ------------------------------------------

    @property
    def datetime(self) -> Any:
        """Naive datetimes do not round-trip: the dialect's ``DateTime`` is the API's timestamp type, an
        instant, so every value comes back as an aware UTC datetime (a naive one is taken as UTC),
        local tables included (docs/sqlalchemy.md, "Types"). The suite compares with the naive value."""
        return exclusions.closed()

    @property
    def datetime_microseconds(self) -> Any:
        """As ``datetime``: the values come back aware (UTC), microseconds intact."""
        return exclusions.closed()

    @property
    def datetime_implicit_bound(self) -> Any:
        """As ``datetime``: ``select(literal(naive_datetime))`` comes back as the aware UTC datetime."""
        return exclusions.closed()

    @property
    def datetime_timezone(self) -> Any:
        """Open: aware datetimes round-trip as the same instant (returned in UTC)."""
        return exclusions.open()

    @property
    def naive_datetime_in_row_fetch(self) -> Any:
        """RowFetchTest.test_row_w_scalar_select reads a DateTime through a scalar subquery and compares
        it with a naive datetime; here it is aware UTC, as ``datetime`` says. Applied to that one test in
        tests/sqlalchemy_suite/test_suite.py (the suite gives it no requirement of its own)."""
        return exclusions.closed()

    @property
    def sane_rowcount_w_returning(self) -> Any:
        """On SQLAlchemy 1.4 only: an UPDATE ... RETURNING's rowcount is SQLite's count of changed rows,
        known once its rows are read (as with sqlite3), and 1.4 reads it before that. (2.x's suite
        has no such test for this dialect.)"""
        return exclusions.skip_if(lambda config: SQLALCHEMY_1, "1.4 reads rowcount before the RETURNING rows")

    # -- each connection is its own database --------------------------------------------------------

    @property
    def second_engine_sees_the_tables(self) -> Any:
        """On SQLAlchemy 1.4 only: InsertBehaviorTest.test_autoclose_on_insert makes a second engine
        when the dialect has RETURNING (this one does, on 1.4 too). A second engine's connections are
        new databases, without the suite's local tables. (2.x's version passes.) Applied in
        tests/sqlalchemy_suite/test_suite.py."""
        return exclusions.skip_if(lambda config: SQLALCHEMY_1, "a second engine is a second set of databases")

    @property
    def independent_connections(self) -> Any:
        """Each DB-API connection is its own database: a local table exists only in the connection
        that created it, so two connections never share tables (as with SQLite's ``:memory:``)."""
        return exclusions.closed()

    @property
    def fixture_table_names_are_free(self) -> Any:
        """ComponentReflectionTest's fixture creates a table named ``users``. In a connection of the
        CloudConvert profile that name is the API table ``Users`` (SQLite names ignore case), which a
        local table cannot take: it would replace or hide the API's table. Applied to that class
        in tests/sqlalchemy_suite/test_suite.py; the suite's other table names are free."""
        return exclusions.skip_if(
            lambda config: _api_table(config, "users"), "the fixture table 'users' is an API table of this profile"
        )


def _api_table(config: Any, name: str) -> bool:
    """Whether ``name`` is an API or sys table of the connections under test (never on other drivers)."""
    if config.db.dialect.driver != "apidriver":
        return False
    with config.db.connect() as connection:
        found = connection.exec_driver_sql("SELECT 1 FROM sys_tables WHERE lower(name) = lower(?)", (name,)).first()
    return found is not None
