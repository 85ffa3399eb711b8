"""`hub send`: send a document to a running hub as one of the site's agencies, then follow it.

The client side of the API, for a first notice and for trying documents out: it picks the
endpoint from the document (JSON or NIEM XML to the message's endpoint, a FHIR Task to
`/fhir/Task`), gets a token, posts, and reads back where the message went. In development
it registers (once) and reuses a client for the agency, kept in `var/dev-clients.json`; in
production the agency's client must be given (HUB_CLIENT_ID, HUB_CLIENT_SECRET).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from lxml import etree

from hub import PROJECT_ROOT
from hub.errors import BadInput, ConfigError, Problem
from hub.messages import MessageType
from hub.settings import Settings
from hub.site import SUBMITTERS, Site

CASE_PLACEHOLDER = "CASE_ID"
ENDPOINTS = {MessageType.DIVERSION_NOTICE: "diversion-notices",
             MessageType.CHARGE_HOLD: "charge-holds",
             MessageType.REFERRAL_STATUS: "referral-status"}
SCOPES = {MessageType.DIVERSION_NOTICE: "diversion.write", MessageType.CHARGE_HOLD: "hold.write",
          MessageType.REFERRAL_STATUS: "status.write"}
FHIR_NS = "http://hl7.org/fhir"
DEV_STATE = PROJECT_ROOT / "var" / "dev-clients.json"


@dataclass(frozen=True)
class Prepared:
    path: str  # on the hub, e.g. /v1/agencies/sfpd/diversion-notices
    content_type: str
    body: bytes


def sender_for(site: Site, kind: MessageType, agency: str | None) -> str:
    """The agency to send as: the one named, or the site's first that may send this kind."""
    allowed = SUBMITTERS[kind]
    if agency is not None:
        found = site.agencies.get(agency)
        if found is None:
            raise BadInput("no such agency", [Problem("--as", f"the site's agencies are "
                                                               f"{', '.join(site.agencies)}")])
        if found.kind not in allowed:
            raise BadInput("this agency cannot send that", [Problem(
                "--as", f"{agency} is a {found.kind} agency; {kind} comes from "
                        f"{' or '.join(sorted(allowed))} agencies")])
        return agency
    for agency_id, a in site.agencies.items():
        if a.kind in allowed:
            return agency_id
    raise ConfigError(f"the site has no {' or '.join(sorted(allowed))} agency to send {kind}")


def _is_fhir_task(raw: bytes, xml: bool) -> bool:
    if xml:
        try:
            root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError:
            return False
        return bool(root.tag == f"{{{FHIR_NS}}}Task")
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("resourceType") == "Task"


def prepare(kind: MessageType, agency: str, file: Path, case: str | None,
            subject: int | None) -> Prepared:
    """What to post where, with CASE_ID replaced by the case id."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise BadInput("cannot read the document", [Problem(str(file), exc.strerror or str(exc))]
                       ) from None
    if CASE_PLACEHOLDER.encode() in raw:
        if not case:
            raise BadInput("this document is about a case", [Problem(
                "--case", f"{file} says {CASE_PLACEHOLDER}: give --case <the diversion notice's "
                          "message id> (or send a diversion notice from here first)")])
        raw = raw.replace(CASE_PLACEHOLDER.encode(), case.encode())
    xml = file.suffix.lower() == ".xml" or raw.lstrip().startswith(b"<")
    if _is_fhir_task(raw, xml):
        if kind != MessageType.REFERRAL_STATUS:
            raise BadInput("a FHIR Task is a referral status", [Problem(
                str(file), "send it with `hub send referral-status`")])
        return Prepared("/fhir/Task", "application/fhir+xml" if xml else "application/fhir+json",
                        raw)
    query = f"?subject={subject}" if subject is not None else ""
    return Prepared(f"/v1/agencies/{agency}/{ENDPOINTS[kind]}{query}",
                    "application/xml" if xml else "application/json", raw)


# development clients and the last case ------------------------------------------------------
def _state(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)  # development client secrets
    tmp.replace(path)


def last_case(site: str, path: Path = DEV_STATE) -> str | None:
    found = _state(path).get(site, {}).get("last_case")
    return str(found) if found else None


def remember_case(site: str, case: str, path: Path = DEV_STATE) -> None:
    data = _state(path)
    data.setdefault(site, {})["last_case"] = case
    _save_state(path, data)


@dataclass
class Credentials:
    client_id: str
    secret: str


def scopes_for(site: Site, agency: str) -> set[str]:
    """What a development client of this agency may do: send what it may send, read its inbox."""
    kind = site.agencies[agency].kind
    return {"inbox.read", *(SCOPES[k] for k, kinds in SUBMITTERS.items() if kind in kinds)}


def credentials(settings: Settings, site: str, agency: str, scopes: set[str],
                register: Callable[[str, str, set[str]], tuple[str, str]],
                fresh: bool = False, path: Path = DEV_STATE) -> Credentials:
    """The agency's client: from HUB_CLIENT_ID/SECRET, or (development) one kept for it here."""
    if os.environ.get("HUB_CLIENT_ID") and os.environ.get("HUB_CLIENT_SECRET"):
        return Credentials(os.environ["HUB_CLIENT_ID"], os.environ["HUB_CLIENT_SECRET"])
    if settings.env == "production":
        raise ConfigError("give the agency's client in HUB_CLIENT_ID and HUB_CLIENT_SECRET "
                          "(from `hub client add`); development clients are not made in "
                          "production")
    data = _state(path)
    kept = data.get(site, {}).get("clients", {}).get(agency)
    if kept and not fresh:
        return Credentials(kept["client_id"], kept["secret"])
    client_id, secret = register(site, agency, scopes)
    data.setdefault(site, {}).setdefault("clients", {})[agency] = {"client_id": client_id,
                                                                  "secret": secret}
    _save_state(path, data)
    return Credentials(client_id, secret)


# talking to the hub --------------------------------------------------------------------------
class HubUnreachable(ConfigError):
    """The running hub does not answer at the URL given."""


class Sender:
    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError:
            raise HubUnreachable(f"no hub answers at {self.base_url}: start it with `make run` "
                                 "(or give --hub URL)") from None

    def token(self, creds: Credentials) -> str | None:
        """A bearer token, or None when the hub does not know the client (e.g. a new database)."""
        r = self._call("POST", "/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(creds.client_id, creds.secret))
        if r.status_code == 401:
            return None
        if r.status_code != 200:
            raise ConfigError(f"the hub refused a token: HTTP {r.status_code} {r.text[:200]}")
        return str(r.json()["access_token"])

    def post(self, token: str, prepared: Prepared) -> httpx.Response:
        return self._call("POST", prepared.path, content=prepared.body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": prepared.content_type,
            "Idempotency-Key": str(uuid.uuid4())})

    def where(self, token: str, agency: str, message_id: str) -> dict[str, Any]:
        r = self._call("GET", f"/v1/agencies/{agency}/messages/{message_id}",
                       headers={"Authorization": f"Bearer {token}"})
        if r.status_code != 200:
            raise ConfigError(f"cannot read where message {message_id} went: HTTP "
                              f"{r.status_code}")
        return r.json()  # type: ignore[no-any-return]

    def close(self) -> None:
        self._http.close()


def message_id_of(response: httpx.Response) -> str:
    found = response.headers.get("X-Hub-Message-Id") or response.json().get("message_id")
    return str(found)


def problems_of(response: httpx.Response) -> list[str]:
    """The hub's answer to a refused document, one line per problem."""
    try:
        body = response.json()
    except ValueError:
        return [f"HTTP {response.status_code}: {response.text[:300]}"]
    if body.get("resourceType") == "OperationOutcome":
        return [f"{' '.join(i.get('expression', [])) or i.get('code', '')}: "
                f"{i.get('diagnostics', '')}".strip(": ") for i in body.get("issue", [])]
    lines = [str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")]
    lines += [f"{p.get('path')}: {p.get('message')}" for p in body.get("errors", [])]
    return lines


def watch(read: Callable[[], dict[str, Any]], expect_any: bool, timeout: float,
          say: Callable[[str], None], pause: float = 0.25) -> dict[str, Any]:
    """Follow a message's deliveries until none is pending (or the time is up)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while True:
        state = read()
        for d in state["deliveries"]:
            if seen.get(d["recipient"]) != d["status"]:
                seen[d["recipient"]] = d["status"]
                tries = f", {d['attempts']} attempt(s)" if d["attempts"] > 1 else ""
                say(f"  -> {d['recipient']}: {d['status']}{tries}")
        routed = bool(state["deliveries"]) or not expect_any
        if routed and all(d["status"] != "pending" for d in state["deliveries"]):
            return state
        if time.monotonic() > deadline:
            return state
        time.sleep(pause)
