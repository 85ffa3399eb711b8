"""A step meeting a database outage holds its message and counts no attempt (hub.steps.outage)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from structlog.testing import capture_logs

from hub.broker import Delivered, Outgoing, Topology
from hub.crypto import Sealer
from hub.errors import BrokerUnavailable, DatabaseUnavailable
from hub.logs import SAFE_KEYS
from hub.steps import runner as runner_module
from hub.steps.outage import OutageWait
from hub.steps.runner import ATTEMPT, MESSAGE_ID, QUICK_RECOVERIES, Job, JobCodec, Next, StepRunner

OUTAGE = DatabaseUnavailable("database unreachable (OperationalError)")


def _probe_answering_after(failures: int) -> Callable[[], bool]:
    calls = iter(range(failures + 10_000))
    return lambda: next(calls) >= failures


def test_wait_probes_with_a_doubling_pause_and_logs_pause_and_resume_once() -> None:
    """0.5, 1, 2, 4 ... capped at 15 s; one 'paused' and one 'resumed' line, allow-listed keys."""
    pauses: list[float] = []

    def idle(seconds: float) -> bool:
        pauses.append(seconds)
        return True

    with capture_logs() as logs:
        assert OutageWait(_probe_answering_after(6), idle).wait(OUTAGE) == 6
    assert pauses == [0.5, 1, 2, 4, 8, 15, 15]
    assert [e["event"] for e in logs] == ["consumption paused", "consumption resumed"]
    assert logs[0]["error_kind"] == "DatabaseUnavailable" and logs[1]["count"] == 6
    assert all(set(e) - {"log_level"} <= SAFE_KEYS for e in logs)


def test_wait_gives_up_when_the_worker_stops() -> None:
    """A stopping worker ends the wait at once, without pretending the database is back."""
    assert OutageWait(lambda: False, lambda s: False).wait(OUTAGE) is None


@dataclass
class FakeChannel:
    published: list[Outgoing] = field(default_factory=list)
    refusing: str | None = None  # an exchange whose publishes RabbitMQ nacks

    def publish(self, out: Outgoing) -> None:
        if out.exchange == self.refusing:
            raise BrokerUnavailable("RabbitMQ refused the message (nack)")
        self.published.append(out)


class FakeConsumer:
    def __init__(self, *_: object) -> None:
        self.channel = FakeChannel()
        self.acked: list[int] = []
        self.idled: list[float] = []

    def ack(self, msg: Delivered) -> None:
        self.acked.append(msg.delivery_tag)

    def idle(self, seconds: float) -> bool:
        self.idled.append(seconds)
        return True


def _runner(monkeypatch: pytest.MonkeyPatch, handle: Callable[[Job], list[Next]],
            probe: Callable[[], bool]) -> tuple[StepRunner, FakeConsumer, Delivered]:
    monkeypatch.setattr(runner_module, "Consumer", FakeConsumer)
    codec = JobCodec(Sealer(base64.b64encode(b"k" * 32).decode()), Topology("t", (200, 400)))
    step = StepRunner("route", handle, codec, "amqp://unused", 8, probe)
    sent = codec.encode("route", {"n": 1}, "m-1")
    msg = Delivered(sent.body, {**sent.headers, MESSAGE_ID: "m-1", ATTEMPT: 0}, 7, False)
    return step, step._consumer, msg  # type: ignore[return-value]


def test_an_outage_holds_the_message_and_retries_it_uncounted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Handled again once the database answers: follow-up at attempt 0, acked once, no retry."""
    calls: list[int] = []

    def handle(job: Job) -> list[Next]:
        calls.append(job.attempt)
        if len(calls) == 1:
            raise OUTAGE
        return [Next("deliver", {"n": 2})]

    step, consumer, msg = _runner(monkeypatch, handle, _probe_answering_after(2))
    step._on_message(msg)
    assert calls == [0, 0]
    assert consumer.idled == [0.5, 1, 2]
    assert [(o.exchange, o.routing_key, o.headers[ATTEMPT]) for o in consumer.channel.published] \
        == [("t", "deliver", 0)]
    assert consumer.acked == [7]


def test_a_message_failing_while_the_database_answers_counts_as_its_own_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After QUICK_RECOVERIES pauses in which the first probe succeeded, the attempt counts."""
    def handle(job: Job) -> list[Next]:
        raise OUTAGE

    step, consumer, msg = _runner(monkeypatch, handle, lambda: True)
    step._on_message(msg)
    assert len(consumer.idled) == QUICK_RECOVERIES
    [retry] = consumer.channel.published
    assert (retry.exchange, retry.routing_key, retry.headers[ATTEMPT]) == ("t.retry", "route.0", 1)
    assert consumer.acked == [7]


def test_a_broker_failure_leaves_the_message_unacked_and_uncounted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A follow-up RabbitMQ refuses: the worker lets go (and reconnects), schedules no retry."""
    step, consumer, msg = _runner(monkeypatch, lambda job: [Next("deliver", {"n": 2})],
                                  lambda: True)
    consumer.channel.refusing = "t"
    with pytest.raises(BrokerUnavailable):
        step._on_message(msg)
    assert consumer.channel.published == [] and consumer.acked == []
