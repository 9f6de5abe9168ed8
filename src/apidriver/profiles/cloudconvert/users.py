"""Users: the account behind the API key (``GET /v2/users/me``)."""

from ...engine.schema import Column, Endpoint, Table
from ...values import BOOLEAN, INTEGER, TEXT, TIMESTAMP

users = Table(
    name="Users",
    description="The account the API key belongs to (one row).",
    columns=(
        Column("id", INTEGER, "Account id.", primary_key=True),
        Column("username", TEXT, "User name."),
        Column("email", TEXT, "E-mail address."),
        Column("credits", INTEGER, "Remaining conversion credits."),
        Column("created_at", TIMESTAMP, "When the account was created (UTC)."),
        Column("paying", BOOLEAN, "Whether the account is on a paid plan (undocumented field)."),
        Column("task_priority", INTEGER, "Task priority of the account, if set (undocumented field)."),
        Column("tasks_per_minute", INTEGER, "Task throughput limit of the account, if set (undocumented field)."),
    ),
    list=Endpoint("/users/me", scope="user.read"),
    estimated_rows=1,
)
