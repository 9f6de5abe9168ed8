"""Webhooks: ``GET /v2/users/me/webhooks`` (filter url)."""

from ...engine.schema import Column, Delete, Endpoint, Insert, Table, Writes
from ...values import BOOLEAN, JSON, TEXT, TIMESTAMP
from .checks import check_webhook

webhooks = Table(
    name="Webhooks",
    description="Account-wide webhooks: URLs notified of job.created, job.finished and job.failed.",
    columns=(
        Column("id", TEXT, "Webhook id.", primary_key=True),
        Column("url", TEXT, "The URL notified.", filter="filter[url]"),
        Column("events", JSON, 'Subscribed events (JSON array), e.g. ["job.failed"].'),
        Column("signing_secret", TEXT, "Secret for checking the CloudConvert-Signature header of deliveries."),
        Column("disabled", BOOLEAN, "Disabled (by hand, or after the receiver answered 410)."),
        Column("failing", BOOLEAN, "Deliveries are currently failing."),
        Column("created_at", TIMESTAMP, "When the webhook was created (UTC)."),
        Column("updated_at", TIMESTAMP, "When it was last changed (UTC)."),
        Column("links_self", TEXT, "The webhook's API URL.", path="links.self"),
    ),
    list=Endpoint("/users/me/webhooks", scope="webhook.read", paginated=True),
    estimated_rows=20,
    write=Writes(
        insert=Insert(
            "/webhooks",
            columns=("url", "events"),
            required=("url", "events"),
            body=lambda row: {"url": row["url"], "events": row["events"]},
            scope="webhook.write",
            check=check_webhook,
        ),
        delete=Delete("/webhooks/{key}", scope="webhook.write"),
    ),
)
