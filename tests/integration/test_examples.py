"""Every document in examples/ is one the hub, as it is, accepts and routes."""

from __future__ import annotations

import json

from tests.harness import CASE_PLACEHOLDER, EXAMPLES, RunningHub, example, wait_for

NEEDS_CASE = {"charge-hold.json", "referral-status.json", "fhir/task-accepted.xml",
              "fhir/task-completed.xml"}
OPENS_A_CASE = {"diversion-notice.json", "niem/arrest-exchange.xml", "niem/charge-referral.xml"}


def _documents() -> list[str]:
    return sorted(str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*")
                  if p.is_file() and p.name != "README.md")


def test_examples_readme_describes_every_example() -> None:
    """examples/README.md names each document; the case placeholder is where it is needed."""
    readme = (EXAMPLES / "README.md").read_text()
    assert _documents() == sorted(NEEDS_CASE | OPENS_A_CASE)
    for name in _documents():
        assert f"`{name}`" in readme, name
        assert (CASE_PLACEHOLDER.encode() in example(name)) == (name in NEEDS_CASE), name
    assert CASE_PLACEHOLDER in readme


def test_every_example_is_accepted_and_routed(running: RunningHub) -> None:
    """Each example, posted as its sender would, is accepted (202) and settles."""
    case = running.submit("sfpd", "diversion-notices",
                          json.loads(example("diversion-notice.json")))
    wait_for("notice delivered", lambda: running.settled(case, 2))
    referral = running.partners["provider"].state.accepted[0].document
    patient = next(e["resource"] for e in referral["entry"]
                   if e["resource"]["resourceType"] == "Patient")
    assert patient["name"][0]["family"] == "Montoya-Ortiz"

    sent: dict[str, str] = {}
    sent["charge-hold.json"] = running.submit(
        "da", "charge-holds", json.loads(example("charge-hold.json", case)))
    sent["referral-status.json"] = running.submit(
        "provider", "referral-status", json.loads(example("referral-status.json", case)))
    for name in ("fhir/task-accepted.xml", "fhir/task-completed.xml"):
        r = running.post_task(example(name, case), "application/fhir+xml")
        assert r.status_code == 202, (name, r.text)
        sent[name] = r.headers["X-Hub-Message-Id"]
    assert set(sent) == NEEDS_CASE
    for name, message_id in sent.items():
        wait_for(f"{name} settled", lambda m=message_id: running.settled(m, 2))
        stored = running.hub.store.get_message(message_id)
        assert stored is not None and stored.case_ref == case, name

    for name, query in (("niem/arrest-exchange.xml", "?subject=0"),
                        ("niem/charge-referral.xml", "")):
        r = running.post_niem(example(name), query)
        assert r.status_code == 202, (name, r.text)
        message_id = r.json()["message_id"]
        wait_for(f"{name} delivered", lambda m=message_id: running.settled(m, 2))
        assert {d.status for d in running.hub.store.deliveries_of(message_id)} == {"delivered"}
