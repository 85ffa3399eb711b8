"""A provider endpoint that is down: retries with growing delay, parking, replay."""

from __future__ import annotations

from tests.harness import RunningHub, hub_cli, notice, wait_for
from tests.queues import depth


def test_endpoint_down_retries_with_growing_delay_then_parks_then_replay_delivers_once(
    running: RunningHub,
) -> None:
    """Attempts back off (200, 400, 800 ms), the delivery is parked, and a replay delivers it once."""
    ehr = running.partners["provider"]
    ehr.state.fail_with = 503
    message_id = running.submit("sfpd", "diversion-notices", notice())
    settings = running.hub.settings

    def provider_delivery() -> str:
        return next((d.status for d in running.hub.store.deliveries_of(message_id)
                     if d.recipient == "provider"), "not yet routed")

    wait_for("provider delivery parked", lambda: provider_delivery() == "parked", timeout=30)
    wait_for("parked job in the queue", lambda: depth(running.hub, "deliver", parked=True) == 1)
    times = ehr.state.attempt_times
    assert len(times) == settings.max_attempts == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # each retry waited at least its own, growing, delay (scheduling may add to any of them)
    assert settings.retry_delays_ms == sorted(settings.retry_delays_ms)
    for gap, delay_ms in zip(gaps, settings.retry_delays_ms, strict=True):
        assert gap >= delay_ms / 1000 * 0.9, f"retried after {gap:.3f} s, before {delay_ms} ms"
    assert ehr.state.accepted == []
    da_status = next(d for d in running.hub.store.deliveries_of(message_id) if d.recipient == "da")
    assert da_status.status == "delivered"  # one recipient down does not hold up the others

    listed = hub_cli(settings, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert message_id in listed.stdout and "gave up after 4 attempts" in listed.stdout
    assert "503" in listed.stdout

    ehr.state.fail_with = None
    replayed = hub_cli(settings, "dlq", "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 1 message(s)" in replayed.stdout
    wait_for("delivered after replay", lambda: provider_delivery() == "delivered")
    assert ehr.message_ids() == [message_id]
    assert depth(running.hub, "deliver", parked=True) == 0
    attempts = {r.attempt for r in running.hub.ledger.for_delivery(
        next(d.id for d in running.hub.store.deliveries_of(message_id) if d.recipient == "provider"))}
    assert len(attempts) >= 2  # every attempt, the replay included, was recorded before sending


def test_recipient_refusing_the_payload_parks_at_once(running: RunningHub) -> None:
    """A 4xx (not 408/429) is permanent: parked after one attempt, with the status as reason."""
    ehr = running.partners["provider"]
    ehr.state.fail_with = 400
    message_id = running.submit("sfpd", "diversion-notices", notice())
    wait_for("parked", lambda: depth(running.hub, "deliver", parked=True) == 1)
    assert len(ehr.state.attempt_times) == 1
    listed = hub_cli(running.hub.settings, "dlq", "list")
    assert message_id in listed.stdout and "HTTP 400" in listed.stdout
