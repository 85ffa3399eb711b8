"""hub.db.session: database errors become DatabaseUnavailable only when the server is out of reach."""

from __future__ import annotations

import sqlite3

import psycopg
import psycopg.errors
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from hub.db.session import is_outage


def _wrapped(orig: Exception, invalidated: bool = False) -> DBAPIError:
    kind = IntegrityError if isinstance(orig, psycopg.IntegrityError) else OperationalError
    return kind("SELECT 1", {}, orig, connection_invalidated=invalidated)


def _sqlite_error(name: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(name)
    exc.sqlite_errorname = name
    return exc


@pytest.mark.parametrize("orig", [
    psycopg.OperationalError("connection failed: Connection refused"),  # no SQLSTATE: no server
    psycopg.errors.lookup("57P01")("terminating connection due to administrator command"),
    psycopg.errors.lookup("57P03")("the database system is starting up"),
    psycopg.errors.lookup("08006")("connection failure"),
    psycopg.errors.lookup("53300")("too many connections"),
    _sqlite_error("SQLITE_CANTOPEN"),
    _sqlite_error("SQLITE_IOERR_SHORT_READ"),
], ids=lambda e: type(e).__name__)
def test_server_out_of_reach_is_an_outage(orig: Exception) -> None:
    """Refused, shutting down, starting up, connection lost, no slots, no file: an outage."""
    assert is_outage(_wrapped(orig))


@pytest.mark.parametrize("orig", [
    psycopg.errors.lookup("40P01")("deadlock detected"),
    psycopg.errors.lookup("40001")("could not serialize access"),
    psycopg.errors.lookup("57014")("canceling statement due to statement timeout"),
    psycopg.errors.lookup("23505")("duplicate key value"),
    _sqlite_error("SQLITE_BUSY"),
], ids=lambda e: type(e).__name__)
def test_a_failed_transaction_is_not_an_outage(orig: Exception) -> None:
    """Deadlocks, serialization failures, timeouts and conflicts stay the message's own failure."""
    assert not is_outage(_wrapped(orig))


def test_an_invalidated_connection_is_an_outage() -> None:
    """Whatever the error, a connection SQLAlchemy had to throw away means the server went."""
    assert is_outage(_wrapped(psycopg.errors.lookup("40P01")("x"), invalidated=True))
