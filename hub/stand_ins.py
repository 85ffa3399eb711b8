"""Stand-in receiving systems for a development site: what `hub serve` runs beside the hub
for agencies whose site entry says `stand_in: true`, so a first notice visibly arrives."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from hub.errors import ConfigError
from hub.partners import PartnerServer, Received
from hub.site import Site

log = structlog.get_logger("hub.stand_ins")


def received_url(push_url: str) -> str:
    """Where a stand-in lists what it received: /received on its host and port."""
    scheme, rest = push_url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}/received"


def start_stand_ins(site: Site) -> dict[str, PartnerServer]:
    """Start a receiver at each stand-in agency's push URL; stop them all if one cannot."""
    started: dict[str, PartnerServer] = {}
    for agency_id, agency in site.stand_ins.items():
        url = agency.delivery.push
        assert url is not None and url.host is not None and url.port is not None
        try:
            started[agency_id] = PartnerServer(agency_id, url.port, url.host).start()
        except OSError as exc:
            for server in started.values():
                server.stop()
            raise ConfigError(
                f"cannot run the stand-in for {agency_id} at {url.host}:{url.port} "
                f"({exc.strerror or exc}): is another hub running? Stop it, or give the "
                "stand-in another port in the site file") from None
        started[agency_id].state.on_receive = _logger(agency_id)
        log.info("stand-in receiver started (development only, not the agency's system)",
                 agency=agency_id, port=url.port)
    return started


def _logger(agency_id: str) -> Callable[[Received], None]:
    def received(r: Received) -> None:
        log.info("stand-in received a delivery", agency=agency_id,
                 message_id=r.headers.get("X-Hub-Message-Id", ""),
                 delivery_id=r.headers.get("X-Hub-Delivery-Id", ""))
    return received


def stop_stand_ins(servers: dict[str, PartnerServer]) -> None:
    for server in servers.values():
        server.stop()
