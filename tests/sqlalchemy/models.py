"""ORM classes for the CloudConvert tables, written as a user would (2.x declarative)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Job(Base):
    __tablename__ = "Jobs"

    id: Mapped[str] = mapped_column(primary_key=True)
    tag: Mapped[str | None]
    status: Mapped[str]
    created_at: Mapped[dt.datetime]
    started_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]

    tasks: Mapped[list[Task]] = relationship(back_populates="job")


class Task(Base):
    __tablename__ = "Tasks"

    id: Mapped[str] = mapped_column(primary_key=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("Jobs.id"))
    name: Mapped[str | None]
    operation: Mapped[str]
    status: Mapped[str]
    code: Mapped[str | None]
    message: Mapped[str | None]
    credits: Mapped[int | None]
    result: Mapped[dict[str, Any] | None]
    depends_on_task_ids: Mapped[list[Any] | None]
    created_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]

    job: Mapped[Job | None] = relationship(back_populates="tasks")
    files: Mapped[list[TaskFile]] = relationship(back_populates="task")


class TaskFile(Base):
    __tablename__ = "TaskFiles"

    task_id: Mapped[str] = mapped_column(ForeignKey("Tasks.id"), primary_key=True)
    idx: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("Jobs.id"))
    operation: Mapped[str]
    filename: Mapped[str | None]
    size: Mapped[int | None]
    url: Mapped[str | None]

    task: Mapped[Task] = relationship(back_populates="files")


class Webhook(Base):
    __tablename__ = "Webhooks"

    id: Mapped[str] = mapped_column(primary_key=True)
    url: Mapped[str]
    events: Mapped[list[Any]]
    disabled: Mapped[bool]
    failing: Mapped[bool]
    created_at: Mapped[dt.datetime]


class Operation(Base):
    __tablename__ = "Operations"

    operation: Mapped[str] = mapped_column(primary_key=True)
    input_format: Mapped[str | None] = mapped_column(primary_key=True)
    output_format: Mapped[str | None] = mapped_column(primary_key=True)
    engine: Mapped[str] = mapped_column(primary_key=True)
    credits: Mapped[int | None]
    experimental: Mapped[bool | None]
    deprecated: Mapped[bool | None]
