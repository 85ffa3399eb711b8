"""Storage: migrations match the models, payloads are encrypted at rest, the ledger holds no values."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import hub.db.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from hub.db.engine import make_engine, upgrade
from hub.settings import Settings
from tests.harness import RunningHub, hold, hub_cli, notice, wait_for
from tests.services import Services

FAMILY = "Quixotlan"
GIVEN = "Marisol"
DOB = "1979-11-23"
STATE_ID = "NM-Q-99817"
PHONE = "555-0142"


def _person_notice() -> dict[str, Any]:
    """A notice whose identifying values are distinctive enough to search for in raw bytes."""
    body = notice()
    body["person"] = {"given_name": GIVEN, "family_name": FAMILY, "date_of_birth": DOB,
                      "state_id": STATE_ID}
    body["contact"] = {"phone": PHONE, "address": "9 Hidden Lane, Santa Fe"}
    return body


def _raw(running: RunningHub, sql: str, **params: Any) -> list[Any]:
    """Rows from a plain SQL select through the hub's engine (no ORM, no decryption)."""
    with running.hub.engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


def _schema_diff(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return list(compare_metadata(MigrationContext.configure(conn), SQLModel.metadata))
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless_and_schema_matches_models(blank_database_url: str) -> None:
    """Migrating a fresh database twice succeeds and leaves a schema identical to the models."""
    database_url = blank_database_url
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        upgrade(engine)
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            version = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    assert set(SQLModel.metadata.tables) <= tables
    assert len(version) == 1, "a second upgrade must not record a second revision"
    assert _schema_diff(database_url) == []


def test_db_upgrade_cli_reports_newest_schema(blank_database_url: str,
                                             services: Services) -> None:
    """`python -m hub db upgrade` exits 0, says the database is current, and creates the schema."""
    settings = Settings(database_url=blank_database_url, amqp_url=services.amqp_url)
    result = hub_cli(settings, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "database is at the newest schema" in result.stdout
    again = hub_cli(settings, "db", "upgrade")
    assert again.returncode == 0, again.stderr
    assert _schema_diff(settings.database_url) == []


def test_message_body_is_encrypted_at_rest(running: RunningHub) -> None:
    """The stored message body holds neither name nor date of birth; the sealer opens it to both."""
    message_id = running.submit("sfpd", "diversion-notices", _person_notice())
    wait_for("both deliveries", lambda: running.settled(message_id, 2))
    rows = _raw(running, "SELECT body FROM message WHERE id = :id", id=message_id)
    assert len(rows) == 1
    body = bytes(rows[0][0])
    for value in (FAMILY, DOB, STATE_ID, PHONE):
        assert value.encode() not in body
        assert value.lower().encode() not in body.lower()
    opened = running.hub.sealer.open(body)
    assert FAMILY.encode() in opened and DOB.encode() in opened


def test_inbox_payload_is_encrypted_at_rest(running: RunningHub) -> None:
    """A hold kept in the police inbox is stored sealed, and opens to the hold's content."""
    case = running.submit("sfpd", "diversion-notices", _person_notice())
    wait_for("notice delivered", lambda: running.settled(case, 2))
    hold_id = running.submit("da", "charge-holds",
                             hold(case, prosecutor="ADA Zephyrine Okonkwo",
                                  conditions=["attend intake at Calle Rosario clinic"]))
    wait_for("hold delivered", lambda: running.settled(hold_id, 2))

    rows = _raw(running, "SELECT agency, payload FROM inbox_item WHERE message_id = :id",
                id=hold_id)
    assert [r[0] for r in rows] == ["sfpd"]
    payload = bytes(rows[0][1])
    opened = running.hub.sealer.open(payload)
    for value in ("Zephyrine", "Calle Rosario", case, '"held"'):
        assert value.encode() in opened, value
        assert value.encode() not in payload, value


def test_ledger_never_stores_values(running: RunningHub) -> None:
    """No column of any ledger row holds the family name, phone number or state id as text."""
    message_id = running.submit("sfpd", "diversion-notices", _person_notice())
    wait_for("both deliveries", lambda: running.settled(message_id, 2))
    assert {d.status for d in running.hub.store.deliveries_of(message_id)} == {"delivered"}

    rows = _raw(running, "SELECT * FROM ledger_entry")
    fields = {r.field_path for r in rows}
    assert {"person.family_name", "contact.phone", "person.state_id"} <= fields, fields
    for row in rows:
        for column, value in row._mapping.items():
            cell = str(value).lower()
            for secret in (FAMILY, PHONE, STATE_ID, DOB, GIVEN):
                assert secret.lower() not in cell, f"{column} holds {secret!r}"
