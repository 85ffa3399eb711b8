"""Shared fixtures: real RabbitMQ and a fresh database per test, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hub import logs
from hub.bootstrap import Hub, bootstrap
from hub.broker import delete_topology
from hub.db.engine import make_engine, upgrade
from hub.partners import PartnerServer
from hub.settings import Settings
from tests.harness import RunningHub
from tests.services import Services, start_services

# tests/conformance/ runs published sample instances (not kept in this repository) through
# the hub. It is collected only when HUB_SAMPLES_DIR says where they are; see its conftest.
collect_ignore = [] if os.environ.get("HUB_SAMPLES_DIR") else ["conformance"]


# Tests that take tens of seconds (thousands of messages, a fresh clone, a database stopped
# and started): run them first, so that parallel workers do not finish on one of them alone.
SLOW_MODULES = ("test_revocation_race", "test_worker_crash", "test_quickstart",
                "test_serve_processes", "test_database_outage", "test_demo")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    found, containers = start_services()
    yield found
    for container in containers:
        container.stop()  # type: ignore[attr-defined]


def pg_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Templates:
    """Each store's schema, migrated once per run; a test starts from a copy of it, which is
    much cheaper than running every migration for every test."""

    def __init__(self, admin_url: str, folder: Path) -> None:
        self._admin_url, self._folder = admin_url, folder
        self._sqlite: Path | None = None
        self._pg: str | None = None

    def sqlite(self, dest: Path) -> str:
        if self._sqlite is None:
            self._sqlite = self._folder / "template.sqlite3"
            engine = make_engine(f"sqlite:///{self._sqlite}")
            upgrade(engine)
            with engine.connect() as conn:  # everything into the main file, then copy it
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            engine.dispose()
        shutil.copyfile(self._sqlite, dest)
        return f"sqlite:///{dest}"

    def postgresql(self) -> Iterator[str]:
        if self._pg is None:
            self._pg = f"hub_template_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{self._pg}"')
            engine = make_engine(f"{self._admin_url.rsplit('/', 1)[0]}/{self._pg}")
            upgrade(engine)
            engine.dispose()  # a template takes no connections while it is copied
        yield from pg_database(self._admin_url, self._pg)

    def close(self) -> None:
        if self._pg is not None:
            with psycopg.connect(self._admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self._pg}" WITH (FORCE)')


@pytest.fixture(scope="session")
def templates(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    made = Templates(services.pg_admin_url, tmp_path_factory.mktemp("templates"))
    yield made
    made.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, templates: Templates,
                 tmp_path: Path) -> Iterator[str]:
    """A database at the newest schema, on each store in turn."""
    if request.param == "sqlite":
        yield templates.sqlite(tmp_path / "hub.sqlite3")
    else:
        yield from templates.postgresql()


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_database_url(request: pytest.FixtureRequest, services: Services,
                       tmp_path: Path) -> Iterator[str]:
    """An empty database, for tests of the migrations themselves."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'blank.sqlite3'}"
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
