"""`hub send` and `hub stand-ins`: try the running hub from the outside, as an agency would."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from hub.errors import HubError
from hub.messages import MessageType
from hub.settings import Settings
from hub.site import load_site
from hub.stand_ins import received_url


def _hub_url(settings: Settings, given: str | None) -> str:
    return given or f"http://{settings.api_host}:{settings.api_port}"


def send(
    kind: Annotated[MessageType, typer.Argument(
        help="diversion-notice, charge-hold or referral-status", show_default=False)],
    file: Annotated[Path, typer.Argument(help="the document: JSON, NIEM XML or a FHIR Task")],
    as_agency: Annotated[str | None, typer.Option(
        "--as", help="the sending agency (default: the site's first that may send this)")] = None,
    case: Annotated[str | None, typer.Option(
        help="the case id (a diversion notice's message id) for CASE_ID in the document; "
             "default: the last diversion notice sent from here")] = None,
    subject: Annotated[int | None, typer.Option(
        help="which person of a NIEM exchange naming several is diverted (0, 1, ...)")] = None,
    watch: Annotated[bool, typer.Option(help="follow the deliveries until they settle")] = False,
    timeout: Annotated[float, typer.Option(help="seconds --watch waits")] = 60.0,
    hub_url: Annotated[str | None, typer.Option(
        "--hub", help="the hub's URL (default: http://HUB_API_HOST:HUB_API_PORT)")] = None,
) -> None:
    """Send a document to the running hub as an agency of the site; print where it went."""
    from hub import sender
    from hub.cli import _settings

    if kind not in sender.ENDPOINTS:
        typer.echo(f"error: agencies send {', '.join(sender.ENDPOINTS)}; not {kind}", err=True)
        raise typer.Exit(2)
    settings = _settings()
    client = sender.Sender(_hub_url(settings, hub_url))
    try:
        site = load_site(settings.site_file)
        agency = sender.sender_for(site, kind, as_agency)
        case = case or sender.last_case(site.site)
        prepared = sender.prepare(kind, agency, file, case, subject)
        token = _token(settings, site.site, agency, sender.scopes_for(site, agency), client)
        response = client.post(token, prepared)
        if response.status_code not in (200, 201, 202):
            typer.echo(f"refused: HTTP {response.status_code}", err=True)
            for line in sender.problems_of(response):
                typer.echo(f"  {line}", err=True)
            raise typer.Exit(1)
        message_id = sender.message_id_of(response)
        if kind == MessageType.DIVERSION_NOTICE:
            sender.remember_case(site.site, message_id)
        typer.echo(f"accepted: {kind} from {agency}, message {message_id}")
        typer.echo(f"  where it went: GET {client.base_url}/v1/agencies/{agency}/messages/"
                   f"{message_id}")
        if not watch:
            return
        state = sender.watch(lambda: client.where(token, agency, message_id), True, timeout,
                             typer.echo)
        _settled(state, timeout)
    except HubError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        client.close()


def _token(settings: Settings, site: str, agency: str, scopes: set[str],
           client: Any) -> str:
    """A token for the agency; a development client the hub no longer knows is made anew."""
    from hub import sender

    def register(site_id: str, agency_id: str, wanted: set[str]) -> tuple[str, str]:
        from hub.bootstrap import bootstrap

        hub = bootstrap(settings, declare=False)
        try:
            return hub.clients.register(site_id, agency_id, wanted)
        finally:
            hub.close()

    creds = sender.credentials(settings, site, agency, scopes, register)
    token = client.token(creds)
    if token is None:
        creds = sender.credentials(settings, site, agency, scopes, register, fresh=True)
        token = client.token(creds)
    if token is None:
        typer.echo("error: the hub does not know this client (HUB_CLIENT_ID)", err=True)
        raise typer.Exit(2)
    return str(token)


def _settled(state: dict[str, Any], timeout: float) -> None:
    deliveries = state["deliveries"]
    pending = [d["recipient"] for d in deliveries if d["status"] == "pending"]
    if not deliveries or pending:
        typer.echo(f"still pending after {timeout:.0f} s: {', '.join(pending) or 'not routed'}",
                   err=True)
        raise typer.Exit(1)
    parked = [d["recipient"] for d in deliveries if d["status"] == "parked"]
    if parked:
        typer.echo(f"parked (see `hub dlq list`): {', '.join(parked)}", err=True)
        raise typer.Exit(1)
    done = ", ".join(f"{d['recipient']} {d['status']}" for d in deliveries)
    typer.echo(f"settled: {done}")


def stand_ins() -> None:
    """What the development site's stand-in receivers got from the running hub."""
    from hub.cli import _settings

    settings = _settings()
    try:
        site = load_site(settings.site_file)
    except HubError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not site.stand_ins:
        typer.echo("this site has no stand-in receivers (no agency has 'stand_in: true')")
        return
    for agency_id, agency in site.stand_ins.items():
        url = received_url(str(agency.delivery.push))
        try:
            received = httpx.get(url, timeout=5).json()["received"]
        except (httpx.HTTPError, ValueError, KeyError):
            typer.echo(f"{agency_id} (stand-in for {agency.name}): not answering at {url}; is "
                       "`make run` running?", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"{agency_id} (stand-in for {agency.name}): {len(received)} received")
        for r in received:
            doc = r["document"]
            what = doc.get("type") or doc.get("resourceType", "?")
            if doc.get("resourceType") == "Bundle":
                what = "FHIR Bundle: " + ", ".join(e["resource"]["resourceType"]
                                                   for e in doc.get("entry", []))
            typer.echo(f"  {r['received_at']}  message {r['message_id']}  {what}")
