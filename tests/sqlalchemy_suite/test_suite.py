"""SQLAlchemy's dialect compliance suite; ``apidriver.sqlalchemy.requirements`` says what is excluded and why."""

from typing import Any

from sqlalchemy import testing
from sqlalchemy.testing.suite import *  # noqa: F403
from sqlalchemy.testing.suite import ComponentReflectionTest as _ComponentReflectionTest
from sqlalchemy.testing.suite import RowFetchTest as _RowFetchTest


class ComponentReflectionTest(_ComponentReflectionTest):  # type: ignore[misc]
    """The suite's class, with a requirement for its fixture's table names (see that requirement)."""

    __requires__ = ("fixture_table_names_are_free",)


class RowFetchTest(_RowFetchTest):  # type: ignore[misc]
    """The suite's class; its scalar-subquery test compares a DateTime with a naive value (see the requirement)."""

    @testing.requires.naive_datetime_in_row_fetch
    def test_row_w_scalar_select(self, connection: Any) -> None:
        super().test_row_w_scalar_select(connection)
