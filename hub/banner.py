"""What `hub serve` prints when it is up: where to look, and what is a stand-in."""

from __future__ import annotations

from hub.bootstrap import Hub
from hub.settings import DEV_TOKEN_KEY, Settings
from hub.stand_ins import received_url


def development_key_warning(settings: Settings) -> str | None:
    """One line when tokens are signed with the placeholder key every clone of the hub has."""
    if settings.env != "development" or settings.token_key != DEV_TOKEN_KEY:
        return None
    return ("WARNING: development mode: access tokens are signed with the development key "
            "published with the hub (HUB_TOKEN_KEY), so anyone can forge one; this hub must "
            "never face a network")


def banner(hub: Hub, workers: str) -> str:
    s = hub.settings
    base = f"http://{s.api_host}:{s.api_port}"
    lines = [
        f"LEAD Hub: site {hub.site.site!r} ({hub.site.name}), {s.env}",
        f"  API         {base}   (docs: {base}/docs)",
        f"  console     {base}/console   (an account: .venv/bin/hub officer add USERNAME "
        "--agency compliance --name \"Full Name\")",
        f"  workers     {workers}",
    ]
    warning = development_key_warning(s)
    if warning:
        lines.append(warning)
    if hub.site.stand_ins:
        lines.append("  STAND-IN receivers (development only; not the agencies' real systems):")
        for agency_id, agency in hub.site.stand_ins.items():
            push = str(agency.delivery.push)
            lines.append(f"    {agency_id:<10} {agency.name}: receives at {push}; "
                         f"what it received: {received_url(push)}")
        lines.append("  send a first notice:  .venv/bin/hub send diversion-notice "
                     "examples/diversion-notice.json --watch")
    return "\n".join(lines)
