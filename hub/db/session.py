"""Units of work. Database errors are translated here into the hub's vocabulary."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session, SQLModel

from hub.errors import DatabaseUnavailable, TransientError

# SQLSTATEs that blame the server, not the transaction: connection exceptions (08),
# insufficient resources (53), system errors (58), shutting down or starting up (57P0x).
# A deadlock, a serialization failure or a statement timeout stays the transaction's own.
_OUTAGE_CLASSES = ("08", "53", "58")
_OUTAGE_CODES = frozenset({"57P01", "57P02", "57P03"})
_SQLITE_OUTAGES = ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_FULL")


def is_outage(exc: DBAPIError) -> bool:
    """True when the database is out of reach, rather than this transaction having failed."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, psycopg.Error):
        code = orig.sqlstate
        if code is None:  # no server answered at all: refused, or the connection dropped
            return isinstance(orig, psycopg.OperationalError)
        return code[:2] in _OUTAGE_CLASSES or code in _OUTAGE_CODES
    if isinstance(orig, sqlite3.Error):
        return orig.sqlite_errorname.startswith(_SQLITE_OUTAGES)
    return False


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """A transaction: committed on success, rolled back on error."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            yield session
            session.commit()
    except DBAPIError as exc:
        # Steps pause on DatabaseUnavailable instead of spending a message's retries.
        if is_outage(exc):
            raise DatabaseUnavailable(f"database unreachable ({type(exc.orig).__name__})") from None
        if isinstance(exc, OperationalError):
            raise TransientError(f"database error ({type(exc.orig).__name__})") from None
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
