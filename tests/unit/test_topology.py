"""The broker topology, declared by the hub and exported for operators from one description."""

from __future__ import annotations

import json

from hub import PROJECT_ROOT
from hub.broker import STEPS, Topology
from hub.settings import Settings


def test_shipped_definitions_match_the_default_topology() -> None:
    """deploy/rabbitmq/definitions.json is what `hub topology` prints for the defaults."""
    defaults = Settings.model_fields
    topology = Topology(defaults["broker_prefix"].default,
                        tuple(defaults["retry_delays_ms"].default))
    shipped = json.loads((PROJECT_ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text())
    assert shipped == topology.definitions()


def test_every_queue_is_a_durable_quorum_queue_and_retries_lead_back_to_work() -> None:
    """Quorum everywhere; each retry queue's TTL is its delay and it dead-letters to its step."""
    topology = Topology("p", (100, 200))
    queues = dict(topology.queues())
    assert len(queues) == len(STEPS) * 4
    assert all(args["x-queue-type"] == "quorum" for args in queues.values())
    for step in STEPS:
        for level, delay in enumerate((100, 200)):
            args = queues[f"p.{step}.retry.{level}"]
            assert args["x-message-ttl"] == delay
            assert (args["x-dead-letter-exchange"], args["x-dead-letter-routing-key"]) == ("p", step)
            assert args["x-dead-letter-strategy"] == "at-least-once"
    assert ("p.parked", "p.deliver.parked", "deliver") in topology.bindings()
