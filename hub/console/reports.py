"""What the console's pages show, read from the hub: accountings, withholdings, parked work,
court orders and the ledger's verification. No HTTP here; `routes` renders these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import func
from sqlmodel import select

from consent.model import ConsentKind
from hub import ledger_events
from hub.bootstrap import Hub
from hub.db.session import unit_of_work
from hub.db.store import aware
from hub.db.tables import ConsentVersion, Delivery, LedgerCheckpoint, LedgerEntry
from hub.dlq import Parked, list_parked
from hub.errors import BadInput, Problem
from hub.ledger import WITHHELD
from hub.ledger_chain import Verdict, verify

WITHHELD_PAGE_SIZE = 200


# accounting period --------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date
    start: datetime  # the first day's midnight at the site
    end: datetime  # the midnight after the last day: exclusive


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def period(tz_name: str, first: str | None, last: str | None, today: date) -> Period:
    """The days an accounting covers, in the site's time zone: by default the last 3 years."""
    problems = []

    def day(name: str, text: str | None) -> date | None:
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            problems.append(Problem(name, "a date, YYYY-MM-DD"))
            return None

    last_day = day("to", last) or today
    first_day = day("from", first) or years_before(last_day, 3)
    if problems:
        raise BadInput("the period has problems", problems)
    if first_day > last_day:
        problems.append(Problem("to", "must not be before 'from'"))
    elif first_day < years_before(last_day, 3):
        problems.append(Problem("from", "an accounting covers at most 3 years "
                                        "(42 CFR 2.24, 2.25)"))
    if problems:
        raise BadInput("the period has problems", problems)
    tz = ZoneInfo(tz_name)
    return Period(first_day, last_day, datetime.combine(first_day, time(), tz),
                  datetime.combine(last_day + timedelta(days=1), time(), tz))


# withheld deliveries ------------------------------------------------------------------------
@dataclass
class WithheldDelivery:
    delivery_id: str
    message_id: str
    message_type: str
    participant_id: str | None
    recipient: str
    purpose: str
    at: datetime
    reasons: list[str]
    fields: list[str]


def withheld(hub: Hub, limit: int = WITHHELD_PAGE_SIZE) -> list[WithheldDelivery]:
    """Deliveries the gate withheld, newest first, with what the ledger says about why."""
    with unit_of_work(hub.engine) as s:
        deliveries = s.exec(select(Delivery).where(
            Delivery.site == hub.site.site, Delivery.status == "withheld")
            .order_by(Delivery.updated_at.desc()).limit(limit)).all()  # type: ignore[attr-defined]
        rows = s.exec(select(LedgerEntry).where(
            LedgerEntry.delivery_id.in_([d.id for d in deliveries]),  # type: ignore[attr-defined]
            LedgerEntry.decision == WITHHELD).order_by(LedgerEntry.seq)).all()  # type: ignore[arg-type]
    by_delivery: dict[str, list[LedgerEntry]] = {}
    for r in rows:
        by_delivery.setdefault(r.delivery_id, []).append(r)
    out = []
    for d in deliveries:
        entries = by_delivery.get(d.id, [])
        last = max((r.attempt for r in entries), default=0)
        entries = [r for r in entries if r.attempt == last]
        out.append(WithheldDelivery(
            d.id, d.message_id, entries[0].message_type if entries else d.form,
            entries[0].participant_id if entries else None, d.recipient, d.purpose,
            aware(d.updated_at), list(dict.fromkeys(r.reason for r in entries)),
            [r.field_path for r in entries]))
    return out


# parked work --------------------------------------------------------------------------------
@dataclass
class ParkedItem:
    parked: Parked
    deliveries: list[Delivery]

    @property
    def parked_at(self) -> datetime | None:
        stamp = self.parked.parked_at
        return datetime.fromtimestamp(stamp, timezone.utc) if stamp else None


def parked(hub: Hub) -> list[ParkedItem]:
    """What waits in the parking queues, with the parked deliveries of each message."""
    items = list_parked(hub.settings.amqp_url, hub.topology)
    with unit_of_work(hub.engine) as s:
        rows = s.exec(select(Delivery).where(
            Delivery.message_id.in_({p.message_id for p in items}),  # type: ignore[attr-defined]
            Delivery.status == "parked")).all()
    by_message: dict[str, list[Delivery]] = {}
    for d in rows:
        by_message.setdefault(d.message_id, []).append(d)
    return [ParkedItem(p, by_message.get(p.message_id, []) if p.step == "deliver" else [])
            for p in items]


# court orders -------------------------------------------------------------------------------
@dataclass
class CourtOrderRow:
    consent_id: str
    version: int
    participant_id: str
    status: str
    court: str
    docket: str
    document_url: str
    entered_by: str
    recorded_by: str
    recorded_at: datetime
    valid_from: str | None
    valid_until: str | None
    disclosers: list[str]
    recipients: list[str]
    purposes: list[str]
    classes: list[str]


def court_orders(hub: Hub, order_id: str | None = None) -> list[CourtOrderRow]:
    """The newest version of every court order at the site (or of one), newest first."""
    with unit_of_work(hub.engine) as s:
        newest = (select(ConsentVersion.consent_id, func.max(ConsentVersion.version).label("v"))
                  .where(ConsentVersion.site == hub.site.site,
                         ConsentVersion.kind == ConsentKind.COURT_ORDER.value,
                         *([ConsentVersion.consent_id == order_id] if order_id else []))
                  .group_by(ConsentVersion.consent_id).subquery())
        rows = s.exec(select(ConsentVersion).join(
            newest, (ConsentVersion.consent_id == newest.c.consent_id)  # type: ignore[arg-type]
            & (ConsentVersion.version == newest.c.v))
            .order_by(ConsentVersion.recorded_at.desc())).all()  # type: ignore[attr-defined]
    out = []
    for r in rows:
        terms = orjson.loads(r.terms)
        source = orjson.loads(hub.sealer.open(r.resource))
        out.append(CourtOrderRow(
            r.consent_id, r.version, r.participant_id, r.status, str(source.get("court", "")),
            str(source.get("docket", "")), str(source.get("order_document_url", "")),
            str(source.get("entered_by", "")), r.recorded_by, aware(r.recorded_at),
            terms.get("valid_from"), terms.get("valid_until"), terms["disclosers"],
            terms["recipients"], terms["purposes"], terms["classes"]))
    return out


# the ledger ---------------------------------------------------------------------------------
@dataclass
class LastVerification:
    at: datetime
    by: str
    ok: bool
    summary: str


@dataclass
class LedgerStatus:
    last: LastVerification | None  # None until someone verifies
    checkpoints: list[LedgerCheckpoint]


def ledger_status(hub: Hub, recent: int = 10) -> LedgerStatus:
    """The newest recorded verification (verifying a large ledger takes minutes: on request)."""
    with unit_of_work(hub.engine) as s:
        event = s.exec(select(LedgerEntry).where(LedgerEntry.decision == ledger_events.VERIFIED)
                       .order_by(LedgerEntry.seq.desc()).limit(1)).first()  # type: ignore[union-attr]
        cps = list(s.exec(select(LedgerCheckpoint)
                          .order_by(LedgerCheckpoint.id.desc()).limit(recent)).all())  # type: ignore[union-attr]
    last = None
    if event is not None:
        last = LastVerification(aware(event.recorded_at), event.discloser,
                                event.field_path == "ok", event.reason)
    return LedgerStatus(last, cps)


def verify_and_record(hub: Hub, actor: str) -> Verdict:
    """Verify the whole chain now, and record the verdict in the ledger it speaks of."""
    verdict = verify(hub.engine, hub.chain, hub.signer.public_hex)
    summary = (f"{verdict.entries} entries, {verdict.checkpoints} signed checkpoint(s)"
               if verdict.ok else f"failed at seq {verdict.first_bad_seq} (id "
               f"{verdict.first_bad_id}): {verdict.problem}")
    ledger_events.record(hub.engine, hub.chain, site=hub.site.site,
                         kind=ledger_events.VERIFIED, actor=actor,
                         subject="ok" if verdict.ok else "failed", reason=summary)
    return verdict
