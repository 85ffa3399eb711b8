"""The route step on a batch, with an in-memory store: one write for all, a bad job alone."""

from __future__ import annotations

from typing import cast

from hub.db.store import Store
from hub.db.tables import Delivery
from hub.settings import Settings
from hub.site import load_site
from hub.steps.route import RouteStep
from hub.steps.runner import Job
from tests.harness import notice


class FakeStore:
    """Records what would be written; one call per transaction."""

    def __init__(self) -> None:
        self.writes: list[list[Delivery]] = []

    def add_deliveries(self, rows: list[Delivery]) -> None:
        self.writes.append(rows)


def _job(message_id: str, kind: str = "diversion-notice") -> Job:
    return Job(step="route", message_id=message_id, attempt=0, final_attempt=False,
               redelivered=False, body={
                   "message_id": message_id, "type": kind, "sender": "sfpd",
                   "case_ref": message_id, "participant_id": "p-1",
                   "referring_agency": "sfpd", "body": notice()})


def test_a_batch_is_written_once_and_a_bad_job_fails_alone() -> None:
    """Three notices and one of no known type: one write of six deliveries, one error."""
    store = FakeStore()
    step = RouteStep(load_site(Settings().site_file), cast(Store, store))
    outcomes = step.handle_batch([_job("m1"), _job("m2"), _job("bad", "no-such-type"),
                                  _job("m3")])
    assert len(store.writes) == 1
    assert sorted(d.message_id for d in store.writes[0]) == ["m1", "m1", "m2", "m2", "m3", "m3"]
    assert isinstance(outcomes[2], Exception)
    for i in (0, 1, 3):
        nexts = outcomes[i]
        assert isinstance(nexts, list)
        assert {n.body["recipient"] for n in nexts} == {"provider", "da"}
    # the same job alone gives the same deliveries, written in a transaction of its own
    alone = step(_job("m1"))
    assert [n.body["delivery_id"] for n in alone] == \
        [n.body["delivery_id"] for n in outcomes[0]]  # type: ignore[union-attr]
    assert len(store.writes) == 2
