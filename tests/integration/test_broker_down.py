"""When RabbitMQ cannot take a message, the sender is told and the hub keeps nothing half-done."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from sqlmodel import select

from hub.bootstrap import Hub, bootstrap
from hub.db.session import unit_of_work
from hub.db.tables import Message
from hub.partners import PartnerServer
from hub.settings import Settings
from tests.harness import RunningHub, notice


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hub_without_broker(settings: Settings) -> Iterator[Hub]:
    """The hub pointed at a port where no broker listens (the shared broker is left alone)."""
    broken = settings.model_copy(update={"amqp_url": f"amqp://guest:guest@127.0.0.1:{_closed_port()}/%2F"})
    built = bootstrap(broken, declare=False)
    yield built
    built.close()


def test_broker_unreachable_is_503_and_no_message_is_kept(
    hub_without_broker: Hub, partners: dict[str, PartnerServer]
) -> None:
    """The notice gets 503 problem details saying nothing was accepted; no row is left behind."""
    with RunningHub(hub_without_broker, partners, workers=False) as api:
        r = api.post("sfpd", "diversion-notices", notice(), key="rms-1")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert "nothing was accepted" in r.json()["detail"]
    with unit_of_work(hub_without_broker.engine) as s:
        assert s.exec(select(Message)).all() == []
