"""Shared fixtures: real RabbitMQ and a fresh database per test, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hub import logs
from hub.bootstrap import Hub, bootstrap
from hub.broker import delete_topology
from hub.partners import PartnerServer
from hub.settings import Settings
from tests.harness import RunningHub
from tests.services import Services, start_services

# tests/conformance/ runs published sample instances (not kept in this repository) through
# the hub. It is collected only when HUB_SAMPLES_DIR says where they are; see its conftest.
collect_ignore = [] if os.environ.get("HUB_SAMPLES_DIR") else ["conformance"]


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    found, containers = start_services()
    yield found
    for container in containers:
        container.stop()  # type: ignore[attr-defined]


def pg_database(admin_url: str) -> Iterator[str]:
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, services: Services, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    else:
        yield from pg_database(services.pg_admin_url)


@pytest.fixture
def settings(database_url: str, services: Services) -> Settings:
    logs.configure("WARNING")
    return Settings(
        database_url=database_url,
        amqp_url=services.amqp_url,
        broker_prefix=f"test-{uuid.uuid4().hex[:10]}",
        retry_delays_ms=[200, 400, 800],
        push_timeout_seconds=2.0,
        prefetch=32,
    )


@pytest.fixture
def partners() -> Iterator[dict[str, PartnerServer]]:
    started = {"da": PartnerServer("da").start(), "provider": PartnerServer("provider").start()}
    yield started
    for p in started.values():
        p.stop()


@pytest.fixture
def hub(settings: Settings, partners: dict[str, PartnerServer]) -> Iterator[Hub]:
    """The hub wired to the test partners, its topology under a queue prefix of its own."""
    built = bootstrap(settings, endpoint_overrides={
        "da": f"{partners['da'].url}/lead/messages",
        "provider": f"{partners['provider'].url}/fhir",
    })
    yield built
    delete_topology(settings.amqp_url, built.topology)
    built.close()


@pytest.fixture
def running(hub: Hub, partners: dict[str, PartnerServer]) -> Iterator[RunningHub]:
    """API and one worker per step, in this process."""
    with RunningHub(hub, partners) as rh:
        yield rh
