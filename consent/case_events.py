"""When a case event (the final disposition of the charges) counts for a consent.

A consent given for one case (42 CFR 2.35: the criminal-justice referral it was signed for)
hears only that case's events, and only those after it was signed. A consent that names
the person but no case covers all of their cases: its event has happened only once every
case that was open at that moment has had it. Once met, a condition stays met.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class CaseHistory:
    """One person's cases (case ref -> when it was opened) and their recorded events."""

    cases: dict[str, datetime] = field(default_factory=dict)
    events: tuple[tuple[str, str, datetime], ...] = ()  # (case ref, event, occurred at)


def event_time(history: CaseHistory, event: str, case_ref: str | None,
               signed_at: datetime) -> datetime | None:
    """When `event` happened for a consent of `case_ref` (None: every case), or None if not yet."""
    first: dict[str, datetime] = {}
    for case, name, at in history.events:
        if name == event and at >= signed_at and (case not in first or at < first[case]):
            first[case] = at
    if case_ref is not None:
        return first.get(case_ref)
    for at in sorted(first.values()):
        open_then = [c for c, opened in history.cases.items() if opened <= at]
        if open_then and all(c in first and first[c] <= at for c in open_then):
            return at
    return None
