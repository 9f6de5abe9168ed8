"""SQLAlchemy's dialect compliance suite; ``apidriver.sqlalchemy.requirements`` says what is excluded and why."""

from sqlalchemy import testing
from sqlalchemy.testing.suite import *  # noqa: F403
from sqlalchemy.testing.suite import ComponentReflectionTest as _ComponentReflectionTest
from sqlalchemy.testing.suite import InsertBehaviorTest as _InsertBehaviorTest
from sqlalchemy.testing.suite import RowFetchTest as _RowFetchTest

from apidriver.sqlalchemy.compat import SQLALCHEMY_1


class ComponentReflectionTest(_ComponentReflectionTest):  # type: ignore[misc]
    """The suite's class, with a requirement for its fixture's table names (see that requirement)."""

    __requires__ = ("fixture_table_names_are_free",)


class RowFetchTest(_RowFetchTest):  # type: ignore[misc]
    """The suite's class; its scalar-subquery test compares a DateTime with a naive value (see the requirement)."""

    @testing.requires.naive_datetime_in_row_fetch
    def test_row_w_scalar_select(self, connection):  # type: ignore[no-untyped-def]  # (1.4's decorators parse the signature)
        super().test_row_w_scalar_select(connection)



if SQLALCHEMY_1:

    class InsertBehaviorTest(_InsertBehaviorTest):  # type: ignore[misc,no-redef]
        """The suite's class; on SQLAlchemy 1.4 one test makes a second engine (see the requirement)."""

        @testing.requires.second_engine_sees_the_tables
        def test_autoclose_on_insert(self):  # type: ignore[no-untyped-def]  # (1.4's decorators parse the signature)
            super().test_autoclose_on_insert()
