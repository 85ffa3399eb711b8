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

def _shared_folder() -> Path:
    """`shared/` beside the project (or HUB_SHARED_DIR): specs and published sample instances."""
    if os.environ.get("HUB_SHARED_DIR"):
        return Path(os.environ["HUB_SHARED_DIR"])
    project = Path(__file__).resolve().parent.parent
    for folder in (project.parent, *project.parent.parents):
        if (folder / "shared" / "samples").is_dir():
            return folder / "shared"
    return project.parent / "shared"


SHARED = _shared_folder()


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    found, containers = start_services()
    yield found
    for container in containers:
        container.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def samples() -> Path:
    path = SHARED / "samples"
    assert path.is_dir(), (f"sample instances expected at {path} (the shared folder beside the "
                           "project); set HUB_SHARED_DIR to where it is")
    return path


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
