"""A token works only while its client is enabled and its agency is in the site: else 401/403."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from joserfc import jwt
from joserfc.jwk import OctKey

from hub import PROJECT_ROOT
from hub.auth import ISSUER
from hub.bootstrap import Hub, bootstrap
from hub.partners import PartnerServer
from tests.harness import RunningHub, hub_cli, notice

FHIR = {"Content-Type": "application/fhir+json"}
JSON = {"Content-Type": "application/json"}
# Every kind of endpoint a client token opens, with a body where it takes one. The agency in
# the path is the token's own, so only the missing agency can be the reason for a refusal.
ENDPOINTS: list[tuple[str, str, str, dict[str, str], bytes | None]] = [
    ("compliance", "POST", "/fhir/Consent", FHIR, b"{}"),
    ("compliance", "PUT", "/fhir/Consent/c-1", FHIR, b"{}"),
    ("compliance", "GET", "/fhir/Consent/c-1", {}, None),
    ("compliance", "GET", "/fhir/Consent/c-1/_history", {}, None),
    ("compliance", "GET", "/fhir/Consent/c-1/_history/1", {}, None),
    ("compliance", "POST", "/fhir/Consent/c-1/$revoke", FHIR, b"{}"),
    ("compliance", "GET", "/v1/audit/accounting?case=no-such-case", {}, None),
    ("compliance", "POST", "/v1/court-orders", JSON, b"{}"),
    ("compliance", "GET", "/v1/court-orders/o-1", {}, None),
    ("outreach", "GET", "/v1/agencies/outreach/inbox", {}, None),
    ("outreach", "POST", "/v1/agencies/outreach/inbox/i-1/ack", {}, None),
    ("outreach", "POST", "/v1/agencies/outreach/diversion-notices", JSON,
     httpx.Request("POST", "/", json=notice()).content),
    ("outreach", "GET", "/v1/agencies/outreach/messages/m-1", {}, None),
    ("outreach", "POST", "/fhir/Task", FHIR, b"{}"),
]
SCOPES = {
    "compliance": {"consent.write", "court-order.write", "audit.read"},
    "outreach": {"diversion.write", "inbox.read", "status.write"},
}


@pytest.fixture
def api(hub: Hub, partners: dict[str, PartnerServer]) -> Iterator[RunningHub]:
    with RunningHub(hub, partners, workers=False) as rh:
        yield rh


@pytest.fixture
def shrunk(hub: Hub, partners: dict[str, PartnerServer],
           tmp_path: Path) -> Iterator[RunningHub]:
    """The same database and token key, restarted on a site file without outreach and compliance."""
    data = yaml.safe_load((PROJECT_ROOT / "deploy" / "sites" / "santa-fe.yaml").read_text())
    del data["agencies"]["outreach"], data["agencies"]["compliance"]
    site_file = tmp_path / "shrunk-site.yaml"
    site_file.write_text(yaml.safe_dump(data))
    smaller = bootstrap(hub.settings.model_copy(update={"site_file": str(site_file)}),
                        declare=False)
    try:
        with RunningHub(smaller, partners, workers=False) as rh:
            yield rh
    finally:
        smaller.close()


def _call(rh: RunningHub, token: str, method: str, path: str, headers: dict[str, str],
          body: bytes | None) -> httpx.Response:
    return rh.http.request(method, path, content=body,
                           headers={**headers, "Authorization": f"Bearer {token}"})


def _reason(r: httpx.Response) -> str:
    body = r.json()
    if body.get("resourceType") == "OperationOutcome":
        return " ".join(i["diagnostics"] for i in body["issue"])
    return str(body["detail"])


def test_a_token_whose_agency_left_the_site_is_refused_everywhere(
    api: RunningHub, shrunk: RunningHub,
) -> None:
    """Tokens issued before their agency was removed from the site file get 403 naming why."""
    tokens = {agency: api.token(agency, scopes) for agency, scopes in SCOPES.items()}
    answers = {f"{method} {path}": _call(shrunk, tokens[agency], method, path, headers, body)
               for agency, method, path, headers, body in ENDPOINTS}
    wrong = {call: f"{r.status_code} {r.text[:120]}" for call, r in answers.items()
             if r.status_code != 403 or "not (or no longer) in site 'santa-fe'" not in _reason(r)}
    assert wrong == {}


def test_a_token_minted_for_an_unregistered_client_is_401(api: RunningHub) -> None:
    """A token signed with the hub's key for a client the hub never registered is refused."""
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "santa-fe.ghost.000000000000", "site": "santa-fe",
              "agency": "ghost", "scope": "consent.write audit.read", "iat": now,
              "exp": now + 300}
    token = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(api.hub.settings.token_key
                                                                   .encode()))
    for _, method, path, headers, body in ENDPOINTS[:7]:
        r = _call(api, token, method, path, headers, body)
        assert r.status_code == 401, f"{method} {path}: {r.status_code} {r.text[:120]}"


def test_disabling_a_client_stops_its_tokens_at_once(api: RunningHub) -> None:
    """`hub client disable`: a token issued before answers 401, and /oauth/token refuses it."""
    client_id, secret = api.client("sfpd")
    issued = api.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                           auth=(client_id, secret))
    token = issued.json()["access_token"]
    inbox = "/v1/agencies/sfpd/inbox"
    assert _call(api, token, "GET", inbox, {}, None).status_code == 200

    result = hub_cli(api.hub.settings, "client", "disable", client_id)
    assert result.returncode == 0, result.stderr
    assert f"client {client_id} disabled" in result.stdout

    refused = _call(api, token, "GET", inbox, {}, None)
    assert refused.status_code == 401 and "disabled" in refused.json()["detail"]
    again = api.http.post("/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client_id, secret))
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"


def test_disabling_an_unknown_client_says_so(api: RunningHub) -> None:
    """`hub client disable` with an id the site does not have exits 2 naming it."""
    result = hub_cli(api.hub.settings, "client", "disable", "santa-fe.sfpd.nope")
    assert result.returncode == 2
    assert "no client 'santa-fe.sfpd.nope'" in result.stderr
