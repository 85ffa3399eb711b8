"""Units of work. Database errors are translated here into the hub's vocabulary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, SQLModel

from hub.errors import TransientError


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """A transaction: committed on success, rolled back on error."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
            session.commit()
    except OperationalError as exc:
        raise TransientError(f"database unavailable: {type(exc.orig).__name__}") from None
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise TransientError("database connection lost") from None
        raise


def insert_ignoring_duplicates(
    session: Session, table: type[SQLModel], rows: list[dict[str, Any]]
) -> None:
    """Insert rows; rows whose unique key already exists are left as they are."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table.__table__).values(rows).on_conflict_do_nothing()  # type: ignore[attr-defined]
    session.execute(stmt)
