"""In PostgreSQL, the hub's own role cannot update or delete the ledger (deploy/postgres/roles.sql)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from hub import PROJECT_ROOT
from hub.settings import Settings
from tests.conftest import pg_database
from tests.harness import RunningHub, notice, wait_for
from tests.services import Services


@pytest.fixture
def database_url(services: Services) -> Iterator[str]:
    """PostgreSQL only: roles and privileges are PostgreSQL's (SQLite has triggers only)."""
    yield from pg_database(services.pg_admin_url)


def test_the_hub_role_may_append_but_not_change_the_ledger(
    running: RunningHub, settings: Settings,
) -> None:
    """With roles.sql applied, the hub role inserts and reads ledger rows but UPDATE/DELETE fail."""
    case = running.submit("sfpd", "diversion-notices", notice())
    wait_for("delivered", lambda: running.settled(case, 2))
    url = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    role = f"lead_hub_{uuid.uuid4().hex[:8]}"
    script = (PROJECT_ROOT / "deploy" / "postgres" / "roles.sql").read_text()
    script = script.replace("CREATE ROLE lead_hub_owner NOLOGIN;", "").replace(
        "lead_hub", role)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(script)
    try:
        as_hub = url.replace("postgres@", f"{role}@")
        with psycopg.connect(as_hub, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM ledger_entry").fetchone()[0] > 0  # type: ignore[index]
            for statement in ("UPDATE ledger_entry SET reason = 'x'",
                              "DELETE FROM ledger_entry", "TRUNCATE ledger_entry"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
