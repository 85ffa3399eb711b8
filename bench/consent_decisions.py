"""Benchmark: consent decisions for referral-status updates to the DA (not a test).

Builds 10,000 consents (mixed kinds, some revoked, some with several versions) across 5,000
participants, indexes them by participant as the delivery step's caller would, then times
`consent.engine.decide` on a status update's four fields for random participants, provider
to DA for LEAD-CJ-MONITORING, for about two seconds.

Run from the project root:  .venv/bin/python bench/consent_decisions.py [seconds]
"""

from __future__ import annotations

import random
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from consent.decisions import DisclosureContext, Party  # noqa: E402
from consent.engine import decide  # noqa: E402
from consent.model import FINAL_DISPOSITION, Consent, ConsentKind  # noqa: E402
from hub.classification import DataClass, FieldValue  # noqa: E402

SITE = "santa-fe"
PARTICIPANTS = 5_000
CONSENTS = 10_000
PROVIDER = Party("provider", "treatment", part2_program=True, tpo_covered_entity=True)
DA = Party("da", "prosecutor", part2_program=False, tpo_covered_entity=False)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
STATUS_UPDATE = [  # referral-status, mappings/canonical.yaml
    FieldValue("case_ref", "case_ref", DataClass.REFERRAL, "SF-2025-000123"),
    FieldValue("status", "status", DataClass.ENGAGEMENT, "engaged"),
    FieldValue("occurred_at", "occurred_at", DataClass.ENGAGEMENT, "2025-05-30T10:00:00Z"),
    FieldValue("plan_summary", "plan_summary", DataClass.TREATMENT, "weekly counselling"),
]
MONITORING = frozenset({DataClass.REFERRAL, DataClass.ENGAGEMENT})


def make_consent(rnd: random.Random, n: int, participant: str) -> Consent:
    """One consent of a random kind, signed within the last 200 days."""
    signed = NOW - timedelta(days=rnd.randint(0, 200), hours=rnd.randint(0, 23))
    kind = rnd.choices(list(ConsentKind), weights=[4, 3, 4, 1])[0]
    if kind == ConsentKind.CRIMINAL_JUSTICE:
        recipients, purposes, classes = frozenset({"da"}), {"LEAD-CJ-MONITORING"}, MONITORING
    elif kind == ConsentKind.TPO:
        recipients, purposes = frozenset(), {"TREAT", "HPAYMT", "HOPERAT"}
        classes = frozenset({DataClass.TREATMENT, DataClass.CLINICAL, DataClass.REFERRAL})
    elif kind == ConsentKind.COURT_ORDER:
        recipients, purposes = frozenset({"da"}), {"LEAD-CHARGE-DECISION"}
        classes = MONITORING | {DataClass.IDENTITY}
    else:
        recipients = frozenset(rnd.sample(["da", "outreach", "sfpd"], rnd.randint(1, 2)))
        purposes = {"TREAT", "LEAD-CJ-MONITORING"}
        classes = frozenset(rnd.sample(list(DataClass)[:6], 3))
    return Consent(
        id=f"c-{n}", version=rnd.choice([1, 1, 1, 2, 3]), kind=kind, site=SITE,
        participant_id=participant, disclosers=frozenset({"provider"}), recipients=recipients,
        purposes=frozenset(purposes), classes=frozenset(classes), valid_from=signed,
        valid_until=signed + timedelta(days=rnd.choice([90, 180, 365])), signed_at=signed,
        expiry_event=FINAL_DISPOSITION if kind == ConsentKind.CRIMINAL_JUSTICE else None,
        revoked_at=signed + timedelta(days=rnd.randint(1, 120)) if rnd.random() < 0.15 else None,
    )


def build(rnd: random.Random) -> dict[str, list[Consent]]:
    participants = [f"P-{i:05d}" for i in range(PARTICIPANTS)]
    index: dict[str, list[Consent]] = defaultdict(list)
    for n in range(CONSENTS):
        participant = participants[n] if n < PARTICIPANTS else rnd.choice(participants)
        consent = make_consent(rnd, n, participant)
        index[participant].append(consent)
        if consent.version > 1:  # the older versions are on file too
            for v in range(1, consent.version):
                index[participant].append(Consent(**{**consent.__dict__, "version": v}))
    return dict(index)


def main(seconds: float = 2.0) -> None:
    rnd = random.Random(20250601)
    index = build(rnd)
    on_file = sum(len(v) for v in index.values())
    keys = list(index)
    print(f"{CONSENTS} consents ({on_file} versions on file) across {len(keys)} participants")

    calls = fields = permits = 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(200):
            participant = keys[rnd.randrange(len(keys))]
            ctx = DisclosureContext(site=SITE, participant_id=participant, discloser=PROVIDER,
                                    recipient=DA, purpose="LEAD-CJ-MONITORING",
                                    message_type="referral-status", at=NOW)
            decisions = decide(index.get(participant, []), ctx, STATUS_UPDATE)
            calls += 1
            fields += len(decisions)
            permits += sum(d.permit for d in decisions)
    elapsed = time.perf_counter() - started
    print(f"{calls} decide() calls in {elapsed:.2f} s")
    print(f"decisions per second (messages): {calls / elapsed:,.0f}")
    print(f"fields per second:               {fields / elapsed:,.0f}")
    print(f"fields permitted: {permits / fields:.1%}")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 2.0)
