"""The deliver step on a batch, with an in-memory store, policy and pusher: claimed once,
pushed concurrently, failures alone, outcomes written once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any, cast

from adapters import fhir_ehr, json_partner
from consent.decisions import Decision, DisclosureContext
from hub import PROJECT_ROOT
from hub.classification import FieldValue, load_catalogue
from hub.crypto import Hasher, Sealer
from hub.db.store import Store
from hub.db.tables import LedgerEntry
from hub.errors import Busy, PermanentError, Reached, TransientError
from hub.inbox import Inbox
from hub.outbound import Rendered
from hub.settings import DEV_PAYLOAD_KEY, Settings
from hub.site import load_site
from hub.steps.deliver import DeliverStep
from hub.steps.runner import Job

PERMIT = Decision(True, "test permit", "LEAD interagency agreement")


class FakeStore:
    """Deliveries by id and status; every transaction recorded."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.claims: list[list[str]] = []
        self.finished: list[tuple[list[str], list[tuple[str, str, str]], list[LedgerEntry]]] = []
        self.ledger: list[LedgerEntry] = []

    def claim_batch(self, ids: list[str], _lease: timedelta, decide: Any) -> dict[str, str]:
        self.claims.append(ids)
        states = {}
        for did in ids:
            status = self.statuses.get(did)
            if status in ("pending", "parked"):
                records, final = decide(did)
                self.ledger += [r for r in records if isinstance(r, LedgerEntry)]
                if final:
                    self.statuses[did] = final
                states[did] = "claimed"
            else:
                states[did] = "missing" if status is None else (
                    status if status in ("delivered", "withheld") else "busy")
        return states

    def finish_batch(self, delivered: list[str], failed: list[tuple[str, str, str]],
                     events: list[LedgerEntry]) -> None:
        self.finished.append((delivered, failed, events))
        for did in delivered:
            self.statuses[did] = "delivered"
        for did, status, _ in failed:
            self.statuses[did] = status


class FakePolicy:
    def decide(self, _ctx: DisclosureContext, fields: list[FieldValue]) -> list[Decision]:
        return [PERMIT] * len(fields)


class FakePusher:
    """Answers after a pause; a delivery id in `refuse` gets a 400. Counts pushes in flight."""

    def __init__(self, refuse: set[str]) -> None:
        self.refuse, self.in_flight, self.most = refuse, 0, 0
        self._lock = threading.Lock()

    def push(self, _url: str, _rendered: Rendered, delivery_id: str, _message_id: str) -> int:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.05)
        with self._lock:
            self.in_flight -= 1
        if delivery_id in self.refuse:
            raise PermanentError("recipient refused the delivery with HTTP 400", Reached.REFUSED)
        return 201


def _job(did: str, recipient: str = "da") -> Job:
    body = {"pathway": "arrest-diversion", "referred_at": "2026-11-01T10:00:00+00:00",
            "person": {"given_name": "Ana", "family_name": "Test",
                       "date_of_birth": "1990-01-01"}}
    return Job(step="deliver", message_id=f"m-{did}", attempt=0, final_attempt=False,
               redelivered=False, body={
                   "delivery_id": did, "message_id": f"m-{did}", "case_ref": f"m-{did}",
                   "sender": "sfpd", "recipient": recipient, "form": "diversion-notice",
                   "purpose": "LEAD-CHARGE-DECISION", "participant_id": "p-1", "body": body})


def _step(store: FakeStore, pusher: FakePusher) -> DeliverStep:
    settings = Settings()
    return DeliverStep(load_site(settings.site_file), cast(Store, store),
                       load_catalogue(PROJECT_ROOT / "mappings" / "canonical.yaml"),
                       FakePolicy(), Hasher("k"), Inbox(cast(Any, None), Sealer(DEV_PAYLOAD_KEY)),
                       pusher, timedelta(seconds=15),
                       renderers={"json": json_partner.render, "fhir-r4": fhir_ehr.render})


def test_a_batch_is_claimed_once_pushed_concurrently_and_finished_once() -> None:
    """Ten deliveries: one claim, pushes overlapping, one write of outcomes."""
    ids = [f"d{i}" for i in range(10)]
    store, pusher = FakeStore(dict.fromkeys(ids, "pending")), FakePusher(set())
    outcomes = _step(store, pusher).handle_batch([_job(d) for d in ids])
    assert outcomes == [[]] * 10
    assert store.claims == [ids] and len(store.finished) == 1
    assert store.finished[0][0] == ids and set(store.statuses.values()) == {"delivered"}
    assert pusher.most > 1  # the pushes overlapped
    assert {e.delivery_id for e in store.ledger} == set(ids)  # every field ledgered first


def test_failures_fail_alone_and_each_says_why() -> None:
    """A refused push, a missing delivery, a busy one, a settled one: the rest are delivered."""
    store = FakeStore({"ok1": "pending", "refused": "pending", "busy": "pending-leased",
                       "done": "delivered", "ok2": "pending"})
    pusher = FakePusher({"refused"})
    jobs = [_job("ok1"), _job("refused"), _job("missing"), _job("busy"), _job("done"),
            _job("ok2")]
    outcomes = _step(store, pusher).handle_batch(jobs)
    assert outcomes[0] == [] and outcomes[5] == []
    assert isinstance(outcomes[1], PermanentError) and "HTTP 400" in str(outcomes[1])
    assert isinstance(outcomes[2], PermanentError) and "missing" in str(outcomes[2])
    assert isinstance(outcomes[3], Busy) and isinstance(outcomes[3], TransientError)
    assert outcomes[4] == []  # already delivered: nothing to do
    delivered, failed, events = store.finished[0]
    assert delivered == ["ok1", "ok2"]
    assert failed == [("refused", "parked", "recipient refused the delivery with HTTP 400")]
    assert [(e.delivery_id, e.decision, e.field_path) for e in events] == \
        [("refused", "attempt-failed", "refused")]


def test_a_repeat_within_the_batch_is_left_to_be_handled_alone() -> None:
    """The same delivery twice in one batch is claimed once; the repeat gets no outcome."""
    store, pusher = FakeStore({"d1": "pending"}), FakePusher(set())
    outcomes = _step(store, pusher).handle_batch([_job("d1"), _job("d1")])
    assert outcomes == [[], None]
    assert store.claims == [["d1"]]
