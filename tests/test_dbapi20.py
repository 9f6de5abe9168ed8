"""PEP 249's shared compliance suite (``dbapi20`` from the PyPI package ``dbapi-compliance``), unmodified.

The suite's scratch tables are created with its own plain ``CREATE TABLE``:
they are local tables of each connection (see docs/querying.md, "Local
tables and transactions"). Two of its tests fail by design, named below.
"""

from __future__ import annotations

from typing import Any, ClassVar

import dbapi20
import pytest

import apidriver
from apidriver.emulator import Emulator


class TestDBAPI20(dbapi20.DatabaseAPI20Test):
    driver = apidriver
    connect_args = ()
    connect_kw_args: ClassVar[dict[str, Any]] = {}
    emulator: ClassVar[Emulator]

    @classmethod
    def setUpClass(cls) -> None:
        cls.emulator = Emulator(jobs=0, seed=3).start()
        cls.connect_kw_args = {"APIKey": cls.emulator.api_key, "BaseURL": cls.emulator.base_url}

    @classmethod
    def tearDownClass(cls) -> None:
        cls.emulator.stop()

    @pytest.mark.xfail(
        strict=True,
        raises=apidriver.ProgrammingError,
        reason="The suite calls a stored procedure named 'lower'; callproc runs the profile's procedures "
        "(sys_procedures), and SQLite's lower() is a function, not a procedure.",
    )
    def test_callproc(self) -> None:
        super().test_callproc()

    @pytest.mark.xfail(
        strict=True,
        reason="close() is idempotent, as sqlite3's and psycopg's are: a second close() does nothing. "
        "The suite itself calls this requirement disputed.",
    )
    def test_non_idempotent_close(self) -> None:
        super().test_non_idempotent_close()

    # The suite leaves these two to each driver ("Drivers need to override this test").

    def test_nextset(self) -> None:
        """No multiple result sets: execute() runs one statement, and nextset (optional) is absent."""
        con = self._connect()
        try:
            cur = con.cursor()
            assert not hasattr(cur, "nextset")
            with pytest.raises(apidriver.ProgrammingError, match="one statement at a time"):
                cur.execute("SELECT 1; SELECT 2")
        finally:
            con.close()

    def test_setoutputsize(self) -> None:
        """setoutputsize() is accepted and ignored: long values still come back whole."""
        con = self._connect()
        try:
            cur = con.cursor()
            self.executeDDL1(cur)
            cur.setoutputsize(5, 0)
            cur.execute(f"insert into {self.table_prefix}booze values (?)", ("a name much longer than five",))
            cur.execute(f"select name from {self.table_prefix}booze")
            assert cur.fetchall() == [("a name much longer than five",)]
        finally:
            con.close()
