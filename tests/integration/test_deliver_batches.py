"""The deliver step handles what prefetch holds as one unit; a poisoned message fails alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from hub.bootstrap import Hub
from hub.db.tables import Delivery
from hub.ledger_chain import verify
from hub.partners import PartnerServer
from hub.service import WorkerThread, start_workers, stop_workers
from hub.steps.deliver import DeliverStep
from hub.steps.runner import Job, Outcome
from tests.harness import RunningHub, notice, wait_for
from tests.queues import depth

NOTICES = 12


@pytest.fixture
def quiet(hub: Hub, partners: dict[str, PartnerServer]) -> Iterator[RunningHub]:
    """The API only: the test starts each step's worker itself."""
    with RunningHub(hub, partners, workers=False) as rh:
        yield rh


def _queue_poison(hub: Hub, message_id: str) -> list[str]:
    """Two deliver jobs that cannot succeed: one names no delivery, one cannot be decided."""
    undecidable = str(uuid.uuid4())
    hub.store.add_deliveries([Delivery(id=undecidable, message_id=message_id, site=hub.site.site,
                                       recipient="da", form="no-such-form",
                                       purpose="LEAD-CHARGE-DECISION")])
    jobs = []
    for did, form in ((str(uuid.uuid4()), "diversion-notice"), (undecidable, "no-such-form")):
        jobs.append({"delivery_id": did, "message_id": message_id, "case_ref": message_id,
                     "sender": "sfpd", "recipient": "da", "form": form,
                     "purpose": "LEAD-CHARGE-DECISION", "participant_id": None,
                     "body": {"pathway": "arrest-diversion"}})
    with hub.publishers.channel() as ch:
        for job in jobs:
            ch.publish(hub.codec.encode("deliver", job, message_id))
    return [j["delivery_id"] for j in jobs]


def test_a_batch_with_poisoned_messages_delivers_the_others_and_parks_those(
    quiet: RunningHub, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twelve notices and two poisoned jobs wait in the deliver queue; one worker takes them in
    batches: every notice reaches both partners once, the two poisoned jobs are parked."""
    sizes: list[int] = []
    handle_batch = DeliverStep.handle_batch

    def counted(self: DeliverStep, jobs: list[Job]) -> list[Outcome]:
        sizes.append(len(jobs))
        return handle_batch(self, jobs)

    monkeypatch.setattr(DeliverStep, "handle_batch", counted)
    hub = quiet.hub
    cases = [quiet.submit("sfpd", "diversion-notices", notice()) for _ in range(NOTICES)]
    upstream = start_workers(hub, ("ingest", "route"))
    try:
        wait_for("all routed", lambda: depth(hub, "deliver") == 2 * NOTICES, timeout=30)
        poisoned = _queue_poison(hub, cases[0])
        assert depth(hub, "deliver") == 2 * NOTICES + 2
        deliver = WorkerThread(hub, "deliver")
        deliver.start()
        try:
            wait_for("every notice delivered", lambda: all(
                quiet.settled(c, 2) for c in cases), timeout=30)
            wait_for("both poisoned jobs parked",
                     lambda: depth(hub, "deliver", parked=True) == 2, timeout=30)
        finally:
            stop_workers([deliver])
    finally:
        stop_workers(upstream)
    for partner in ("da", "provider"):
        received = quiet.partners[partner].message_ids()
        assert sorted(received) == sorted(cases), partner  # each once, nothing else
    statuses = {d.id: d.status for c in cases for d in hub.store.deliveries_of(c)}
    assert set(statuses.values()) == {"delivered"}
    assert not any(d.id in poisoned and d.status == "delivered"
                   for d in hub.store.deliveries_of(cases[0]))
    assert verify(hub.engine, hub.chain, hub.signer.public_hex).ok
    assert max(sizes) > 2, sizes  # the poisoned jobs shared a batch with good ones
