"""Evaluator extracts (42 CFR 2.53, 2.54): case timelines for program evaluation.

De-identified by default: a per-evaluator pseudonym, the referral year, and intervals in
days (referral to intake, plan, engagement, exit), never names, dates of birth or dates.
Identifying keys (case and participant ids, the referral date) are added only for an
evaluator whose written agreement is on file in the site configuration and still current.
Every extract is itself recorded in the ledger.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from datetime import date, datetime
from typing import Any

import orjson
from sqlmodel import select

from hub import ledger_events
from hub.db.session import unit_of_work
from hub.db.store import aware
from hub.db.tables import Message
from hub.errors import Forbidden, NotFound

MILESTONES = ("intake-done", "plan-presented", "engaged", "exited")


def _days(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else (end - start).days


def build_extract(hub: Any, evaluator: str, start: datetime, end: datetime, identified: bool,
                  actor: str) -> list[dict[str, Any]]:
    found = hub.site.evaluators.get(evaluator)
    if found is None:
        raise NotFound(f"no evaluator {evaluator!r} in the site configuration")
    if identified:
        agreement = found.agreement
        if agreement is None or agreement.expires < date.today():
            raise Forbidden(f"no current evaluator agreement on file for {evaluator} "
                            "(42 CFR 2.53): only a de-identified extract may be produced")
    key = hashlib.sha256(f"evaluator|{evaluator}|{hub.settings.ledger_key}".encode()).digest()
    with unit_of_work(hub.engine) as s:
        notices = s.exec(select(Message).where(
            Message.site == hub.site.site, Message.type == "diversion-notice",
            Message.received_at >= start, Message.received_at < end)).all()
        follow = s.exec(select(Message).where(
            Message.site == hub.site.site,
            Message.case_ref.in_([n.id for n in notices]),  # type: ignore[union-attr]
            Message.type.in_(("referral-status", "charge-hold")))).all()  # type: ignore[attr-defined]
    by_case: dict[str, list[dict[str, Any]]] = {}
    for m in follow:
        body = orjson.loads(hub.sealer.open(m.body))
        by_case.setdefault(m.case_ref or "", []).append({"type": m.type, **body})
    rows = []
    for n in sorted(notices, key=lambda m: m.received_at):
        notice = orjson.loads(hub.sealer.open(n.body))
        referred = aware(datetime.fromisoformat(notice["referred_at"]))
        events = by_case.get(n.id, [])
        first: dict[str, datetime] = {}
        hold = None
        for e in sorted(events, key=lambda e: e.get("occurred_at") or e.get("decided_at")):
            if e["type"] == "referral-status" and e["status"] in MILESTONES:
                first.setdefault(e["status"], aware(datetime.fromisoformat(e["occurred_at"])))
            elif e["type"] == "charge-hold":
                hold = e["status"]
        pseudonym = hmac.new(key, (n.participant_id or n.id).encode(), hashlib.sha256).hexdigest()
        row: dict[str, Any] = {
            "participant": pseudonym[:16], "pathway": notice["pathway"],
            "referral_year": referred.year,
            **{f"days_to_{m.replace('-', '_')}": _days(referred, first.get(m))
               for m in MILESTONES},
            "exited": "exited" in first, "last_hold_status": hold,
        }
        if identified:
            row.update(case_ref=n.id, participant_id=n.participant_id,
                       referred_on=referred.date().isoformat())
        rows.append(row)
    ledger_events.record(
        hub.engine, hub.chain, site=hub.site.site, kind="extract", actor=actor,
        subject=f"evaluator extract ({'identified' if identified else 'de-identified'})",
        reason=f"{len(rows)} case(s) for {evaluator}"
               + (f" under {found.agreement.reference}" if identified else ""),
        recipient=evaluator)
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
