"""`hub serve` that cannot start says why in one line, with what to do, and exits non-zero."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub import PROJECT_ROOT
from hub.broker import Topology, delete_topology
from hub.settings import Settings
from tests.harness import hub_env
from tests.services import Services


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket goes


def _serve(settings: Settings, site_file: Path | None = None,
           **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub", "serve"],
                          env={**hub_env(settings, site_file), **env},
                          capture_output=True, text=True, timeout=60)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [x for x in result.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture
def base(tmp_path: Path, services: Services) -> Iterator[Settings]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hub.sqlite3'}",
                        amqp_url=services.amqp_url,
                        broker_prefix=f"test-{uuid.uuid4().hex[:10]}", api_port=_closed_port())
    yield settings
    # a hub that got as far as declaring its queues leaves them: remove this test's
    delete_topology(services.amqp_url, Topology(settings.broker_prefix,
                                                tuple(settings.retry_delays_ms)))


def test_without_a_broker_serve_prints_one_clear_line(base: Settings) -> None:
    """RabbitMQ at a closed port: what is missing, where, and how to start it."""
    port = _closed_port()
    line = _one_line(_serve(base.model_copy(
        update={"amqp_url": f"amqp://guest:s3cret@127.0.0.1:{port}/%2F"})))
    assert f"cannot reach RabbitMQ at 127.0.0.1:{port}" in line
    assert "rabbitmq-server" in line and "HUB_AMQP_URL" in line
    assert "s3cret" not in line


def test_with_an_unreachable_database_serve_prints_one_clear_line(base: Settings) -> None:
    """PostgreSQL at a closed port: the URL without its password, and what to do."""
    port = _closed_port()
    line = _one_line(_serve(base.model_copy(
        update={"database_url": f"postgresql://hub:s3cret@127.0.0.1:{port}/hub"})))
    assert "cannot reach the database" in line and f"127.0.0.1:{port}" in line
    assert "HUB_DATABASE_URL" in line and "s3cret" not in line


def test_production_refuses_a_site_with_stand_ins(base: Settings) -> None:
    """HUB_ENV=production with the demo site's stand-ins: refused, naming them."""
    secrets = {"HUB_ENV": "production", "HUB_LEDGER_KEY": "production-ledger-key-0123456789",
               "HUB_TOKEN_KEY": "production-token-key-0123456789ab",
               "HUB_PAYLOAD_KEY": "cHJvZHVjdGlvbi1wYXlsb2FkLWtleS0zMmJ5dGVzISE=",
               "HUB_LEDGER_SIGNING_KEY": "cHJvZHVjdGlvbi1zaWduaW5nLXNlZWQtMzJieXRlcyE=",
               "HUB_AMQP_URL": "amqp://lead-hub:broker-secret@127.0.0.1:5672/%2F",
               "HUB_PUBLIC_URL": "https://hub.lead.example"}
    line = _one_line(_serve(base, PROJECT_ROOT / "deploy" / "sites" / "santa-fe.yaml",
                            **secrets))
    assert "stand-in" in line and "da, provider" in line and "development only" in line


def test_a_stand_in_port_in_use_is_said_plainly(base: Settings, tmp_path: Path) -> None:
    """Another process holds the stand-in DA's port: one line naming it, nothing half-started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        site = (PROJECT_ROOT / "deploy" / "sites" / "santa-fe.yaml").read_text()
        site_file = tmp_path / "site.yaml"
        site_file.write_text(site.replace(":8701/", f":{port}/")
                             .replace(":8702/", f":{_closed_port()}/"))
        line = _one_line(_serve(base, site_file))
    assert f"stand-in for da at 127.0.0.1:{port}" in line and "another hub" in line
