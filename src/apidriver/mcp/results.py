"""The catalogue tools' results as JSON schemas (MCP ``outputSchema``): what a client may rely on in ``structuredContent``.

``run_query`` has none: its result is one compact JSON text (see :mod:`.queries`), sent once.
"""

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ColumnInfo", "ParameterInfo", "ProcedureEntry", "TableDescription", "TableEntry", "TableList"]


class TableEntry(BaseModel):
    name: str
    kind: str = Field(description="table (rows from the API), derived (cut from another table's rows) or system (apidriver's metadata).")
    description: str
    pushdown: list[str] = Field(description="Columns whose = and IN conditions are sent to the API; other conditions are checked locally.")
    writes: list[str] = Field(description="The writes the API allows on the table (INSERT, DELETE); refused when the server is read-only.")


class ProcedureEntry(BaseModel):
    name: str
    signature: str = Field(description="How to call it: SELECT * FROM Name(arg, ...); [arg] is optional.")
    description: str
    writes: bool = Field(description="Whether it changes the account (refused when the server is read-only).")


class TableList(BaseModel):
    tables: list[TableEntry]
    procedures: list[ProcedureEntry]


class ColumnInfo(BaseModel):
    name: str
    type: str = Field(description="TEXT, INTEGER, REAL, BOOLEAN, TIMESTAMP (ISO 8601 UTC text) or JSON (nested JSON in results).")
    description: str
    references: str | None = Field(description="Table.column this column refers to (a foreign key), if any.")
    pushdown: str | None = Field(default=None, description="What an = or IN condition on it sends to the API; none: checked locally.")


class ParameterInfo(BaseModel):
    name: str
    type: str
    required: bool
    description: str


class TableDescription(BaseModel):
    name: str
    kind: str = Field(description="table, derived, system or procedure.")
    description: str
    signature: str | None = Field(description="For a procedure: how to call it.")
    writes: list[str] = Field(description="Writes the API allows (INSERT, DELETE; CALL for a procedure that changes the account).")
    primary_key: list[str]
    columns: list[ColumnInfo] = Field(description="The table's columns; for a procedure, the columns of its result.")
    parameters: list[ParameterInfo] = Field(description="For a procedure: its arguments, in order.")
    example: str = Field(description="A query showing how the table is meant to be read (? are parameters).")
