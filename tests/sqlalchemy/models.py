"""ORM classes for the CloudConvert tables, in the declarative style that SQLAlchemy 1.4 and 2.x share.

(The 2.x-only ``DeclarativeBase``/``Mapped`` style is covered by test_article.py
and docs/sqlalchemy.md, which run on 2.x.)
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import declarative_base, relationship

Base = declarative_base()


class Job(Base):  # type: ignore[valid-type,misc]
    __tablename__ = "Jobs"

    id = Column(String, primary_key=True)
    tag = Column(String)
    status = Column(String, nullable=False)
    created_at = Column(DateTime, nullable=False)
    started_at = Column(DateTime)
    ended_at = Column(DateTime)

    tasks = relationship("Task", back_populates="job")


class Task(Base):  # type: ignore[valid-type,misc]
    __tablename__ = "Tasks"

    id = Column(String, primary_key=True)
    job_id = Column(String, ForeignKey("Jobs.id"))
    name = Column(String)
    operation = Column(String, nullable=False)
    status = Column(String, nullable=False)
    code = Column(String)
    message = Column(String)
    credits = Column(Integer)
    result = Column(JSON)
    depends_on_task_ids = Column(JSON)
    created_at = Column(DateTime, nullable=False)
    ended_at = Column(DateTime)

    job = relationship("Job", back_populates="tasks")
    files = relationship("TaskFile", back_populates="task")


class TaskFile(Base):  # type: ignore[valid-type,misc]
    __tablename__ = "TaskFiles"

    task_id = Column(String, ForeignKey("Tasks.id"), primary_key=True)
    idx = Column(Integer, primary_key=True)
    job_id = Column(String, ForeignKey("Jobs.id"))
    operation = Column(String, nullable=False)
    filename = Column(String)
    size = Column(Integer)
    url = Column(String)

    task = relationship("Task", back_populates="files")


class Webhook(Base):  # type: ignore[valid-type,misc]
    __tablename__ = "Webhooks"

    id = Column(String, primary_key=True)
    url = Column(String, nullable=False)
    events = Column(JSON, nullable=False)
    disabled = Column(Boolean, nullable=False)
    failing = Column(Boolean, nullable=False)
    created_at = Column(DateTime, nullable=False)


class Operation(Base):  # type: ignore[valid-type,misc]
    __tablename__ = "Operations"

    operation = Column(String, primary_key=True)
    input_format = Column(String, primary_key=True)
    output_format = Column(String, primary_key=True)
    engine = Column(String, primary_key=True)
    credits = Column(Integer)
    experimental = Column(Boolean)
    deprecated = Column(Boolean)
