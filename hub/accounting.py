"""Accounting of disclosures (45 CFR 164.528(b), 42 CFR 2.24, 2.25) for one patient and period.

Built from the ledger. A disclosure is every delivery whose information may have reached the
recipient: accepted, but also refused, answered with an error, timed out or cut off after
the request was sent, and attempts whose answer was never recorded. Whether the partner kept
it or not, the information left the hub, so the list is never shorter than the truth; each
line says what the partner answered. Repeated disclosures to one recipient, for one purpose,
with one outcome are summarised (the first in full, how many, the last date), and a summary
lists every field and legal basis of the disclosures it stands for. Legal bases are named
by kind: a consent, a court order (with its court and docket, never as a Consent), the
site's LEAD agreement. Withheld deliveries are listed with their reasons.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from sqlmodel import select

from consent.decisions import BasisKind
from consent.engine import LEGAL_BASIS
from consent.model import ConsentKind
from consent.purposes import purpose_text
from consent.registry import Authority
from hub.db.session import unit_of_work
from hub.db.store import aware
from hub.db.tables import Delivery, LedgerEntry
from hub.errors import BadInput, Problem, Reached
from hub.ledger import DISCLOSED, WITHHELD
from hub.ledger_events import ATTEMPT_FAILED
from hub.site import Site

MAX_PERIOD = timedelta(days=3 * 366)  # three years, leap days included
ACCEPTED = "accepted"
UNKNOWN = "unknown"
OUTCOMES = {
    ACCEPTED: "received and accepted by the recipient",
    Reached.REFUSED.value: "reached the recipient, which refused it",
    Reached.ERROR_ANSWER.value: "reached the recipient, which answered with an error",
    Reached.TIMED_OUT.value: "sent; no answer came in time (the recipient may have it)",
    Reached.NO_ANSWER.value: "sent; the connection broke before an answer (the recipient may "
                             "have it)",
    UNKNOWN: "sent or being sent; no answer is recorded (the hub stopped during the attempt, "
             "or it is still under way)",
}
BASIS_TEXT = {BasisKind.CONSENT.value: "consent",
              BasisKind.COURT_ORDER.value: LEGAL_BASIS[ConsentKind.COURT_ORDER],
              BasisKind.LEAD_AGREEMENT.value: "LEAD interagency agreement (not a Part 2 record)",
              BasisKind.NONE.value: "none"}
REFERENCE = re.compile(r"^(?:Consent|CourtOrder)/([^/]+)/_history/(\d+)$")


@dataclass(frozen=True)
class Basis:
    kind: str  # a BasisKind value
    reference: str | None  # Consent/<id>/_history/<v> or CourtOrder/<id>/_history/<v>


@dataclass
class Line:
    """One delivery to one recipient: what may have reached it, or what was withheld."""

    date: datetime
    delivery_id: str
    message_type: str
    recipient: str
    purpose: str
    bases: list[Basis]
    notice: str | None
    fields: list[tuple[str, str]]  # (path, data class)
    withheld: list[tuple[str, str, str]] = field(default_factory=list)  # (path, class, reason)
    outcome: str = ACCEPTED  # what the recipient answered (OUTCOMES); withheld lines: "withheld"
    answer: str = ""  # the hub's record of that answer, e.g. "recipient answered HTTP 503"


def _period(start: datetime, end: datetime) -> None:
    problems = []
    if end <= start:
        problems.append(Problem("to", "must be after 'from'"))
    if end - start > MAX_PERIOD:
        problems.append(Problem("from", "an accounting covers at most 3 years (42 CFR 2.24)"))
    if problems:
        raise BadInput("bad accounting period", problems)


def _unique(items: list[Any]) -> list[Any]:
    return list(dict.fromkeys(items))


class Accounting:
    def __init__(self, site: Site, participant_id: str, start: datetime, end: datetime,
                 disclosed: list[Line], withheld: list[Line],
                 authorities: dict[str, Authority] | None = None) -> None:
        self.site, self.participant_id = site, participant_id
        self.start, self.end = start, end
        self.disclosed, self.withheld = disclosed, withheld
        self._authorities = authorities or {}

    def _recipient(self, agency: str) -> dict[str, Any]:
        a = self.site.agencies.get(agency)
        return {"id": agency, "name": a.name if a else agency, "address": a.address if a else None}

    # legal bases -------------------------------------------------------------------------
    def basis(self, b: Basis) -> dict[str, Any]:
        """A legal basis named in words, with where to read the consent or order."""
        out: dict[str, Any] = {"kind": b.kind, "kind_text": BASIS_TEXT.get(b.kind, b.kind),
                               "reference": b.reference}
        match = REFERENCE.match(b.reference or "")
        if match is None:
            return out
        ref_id, version = match.groups()
        known = self._authorities.get(ref_id)
        if b.kind == BasisKind.COURT_ORDER.value:
            out.update(reference=f"CourtOrder/{ref_id}/_history/{version}",
                       court=known.court if known else "", docket=known.docket if known else "",
                       url=f"/v1/court-orders/{ref_id}")
        else:
            if known is not None:
                out["kind_text"] = LEGAL_BASIS[known.kind]
            out["url"] = f"/fhir/Consent/{ref_id}/_history/{version}"
        return out

    def basis_words(self, b: Basis) -> str:
        d = self.basis(b)
        words = d["kind_text"]
        if d.get("court"):
            words += f": {d['court']}, docket {d['docket']}"
        return f"{words} ({d['reference']})" if d["reference"] else words

    # summaries ---------------------------------------------------------------------------
    def groups(self) -> list[list[Line]]:
        """Disclosures to one recipient for one purpose with one outcome, oldest first."""
        grouped: dict[tuple[str, str, str], list[Line]] = defaultdict(list)
        for line in sorted(self.disclosed, key=lambda x: x.date):
            grouped[(line.recipient, line.purpose, line.outcome)].append(line)
        return sorted(grouped.values(), key=lambda g: g[0].date)

    @staticmethod
    def _fields(group: list[Line]) -> list[tuple[str, str]]:
        return _unique([f for line in group for f in line.fields])

    def _description(self, group: list[Line]) -> str:
        fields = self._fields(group)
        types = ", ".join(_unique([line.message_type for line in group]))
        classes = sorted({c for _, c in fields})
        return f"{types}: {', '.join(classes)} ({len(fields)} field(s))"

    def to_json(self) -> dict[str, Any]:
        disclosures = []
        for group in self.groups():
            first = group[0]
            disclosures.append({
                "date": first.date.isoformat(),
                "recipient": self._recipient(first.recipient),
                "description": self._description(group),
                "purpose": first.purpose,
                "purpose_text": purpose_text(first.purpose),
                "outcome": first.outcome,
                "outcome_text": OUTCOMES.get(first.outcome, first.outcome),
                "legal_basis": [self.basis(b) for b in _unique(
                    [b for line in group for b in line.bases])],
                "notice": next((x.notice for x in group if x.notice), None),
                "fields": [{"path": p, "data_class": c} for p, c in self._fields(group)],
                "withheld_fields": [{"path": p, "data_class": c, "reason": r} for p, c, r in
                                    _unique([w for line in group for w in line.withheld])],
                "count": len(group),
                "last_date": group[-1].date.isoformat(),
                "deliveries": [line.delivery_id for line in group],
                "answers": [{"delivery": line.delivery_id, "date": line.date.isoformat(),
                             "answer": line.answer} for line in group if line.answer],
            })
        withheld = [{
            "date": line.date.isoformat(), "recipient": self._recipient(line.recipient),
            "description": f"{line.message_type} (not sent)", "purpose": line.purpose,
            "reason": sorted({r for _, _, r in line.withheld}),
            "fields": [{"path": p, "data_class": c, "reason": r} for p, c, r in line.withheld],
            "delivery": line.delivery_id,
        } for line in sorted(self.withheld, key=lambda x: x.date)]
        return {"participant": self.participant_id, "site": self.site.site,
                "from": self.start.isoformat(), "to": self.end.isoformat(),
                "disclosures": disclosures, "withheld": withheld}

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["kind", "date", "recipient", "recipient_address", "description",
                         "purpose", "outcome", "legal_basis", "notice", "fields", "count",
                         "last_date", "withheld_reason"])
        for group in self.groups():
            first = group[0]
            bases = _unique([b for line in group for b in line.bases])
            writer.writerow([
                "disclosed", first.date.isoformat(), self._recipient(first.recipient)["name"],
                self._recipient(first.recipient)["address"] or "", self._description(group),
                first.purpose, f"{first.outcome}: {OUTCOMES.get(first.outcome, '')}",
                "; ".join(self.basis_words(b) for b in bases),
                next((x.notice for x in group if x.notice), None) or "",
                "; ".join(p for p, _ in self._fields(group)), len(group),
                group[-1].date.isoformat(),
                "; ".join(sorted({r for line in group for _, _, r in line.withheld}))])
        for line in sorted(self.withheld, key=lambda x: x.date):
            recipient = self._recipient(line.recipient)
            writer.writerow([
                "withheld", line.date.isoformat(), recipient["name"], recipient["address"] or "",
                f"{line.message_type} (not sent)", line.purpose, "withheld", "", "",
                "; ".join(p for p, _, _ in line.withheld), 1, line.date.isoformat(),
                "; ".join(sorted({r for _, _, r in line.withheld}))])
        return out.getvalue()

    # FHIR --------------------------------------------------------------------------------
    def _basis_entity(self, b: Basis) -> dict[str, Any]:
        d = self.basis(b)
        if b.kind == BasisKind.COURT_ORDER.value:
            ref_id = d["url"].rsplit("/", 1)[-1] if "url" in d else (b.reference or "unknown")
            return {"what": {"identifier": {"system": "urn:lead-hub:court-order",
                                            "value": ref_id},
                             "display": self.basis_words(b)[:1000]},
                    "type": {"system": "urn:lead-hub:authority", "code": "court-order",
                             "display": "court order (42 CFR Part 2 Subpart E)"},
                    "description": self.basis_words(b)[:1000],
                    "detail": [{"type": "court", "valueString": d.get("court") or "unknown"},
                               {"type": "docket", "valueString": d.get("docket") or "unknown"},
                               {"type": "reference", "valueString": d["reference"] or "none"}]}
        if b.kind == BasisKind.CONSENT.value and b.reference:
            return {"what": {"reference": d["reference"]},
                    "type": {"system": "http://hl7.org/fhir/resource-types", "code": "Consent"},
                    "description": d["kind_text"]}
        return {"what": {"display": d["kind_text"]},
                "type": {"system": "urn:lead-hub:authority", "code": b.kind},
                "description": d["kind_text"]}

    def to_fhir(self) -> dict[str, Any]:
        """A collection Bundle of AuditEvents, validated against the R4B models."""
        entries = []
        for line in sorted(self.disclosed + self.withheld, key=lambda x: x.date):
            sent = line.outcome != WITHHELD
            recipient = self._recipient(line.recipient)
            if sent:
                desc = f"disclosed; {OUTCOMES.get(line.outcome, line.outcome)}"
                desc += f": {line.answer}" if line.answer else ""
            else:
                desc = "withheld: " + "; ".join(sorted({r for _, _, r in line.withheld}))
            delivery_detail = [
                {"type": "fields" if sent else "withheld-fields",
                 "valueString": "; ".join(p for p, _ in line.fields) if sent
                 else "; ".join(p for p, _, _ in line.withheld)},
                {"type": "legal-basis",
                 "valueString": "; ".join(self.basis_words(b) for b in line.bases) or "none"},
                {"type": "part2-notice", "valueString": line.notice or "none"}]
            if sent:
                delivery_detail.append({"type": "recipient-answer",
                                        "valueString": f"{line.outcome}: {line.answer}"
                                        if line.answer else line.outcome})
            event: dict[str, Any] = {
                "resourceType": "AuditEvent",
                "type": {"system": "http://dicom.nema.org/resources/ontology/DCM",
                         "code": "110106", "display": "Export"},
                "action": "E",
                "recorded": line.date.isoformat(),
                "outcome": "0" if line.outcome == ACCEPTED else "4",
                "outcomeDesc": desc[:1000],
                "purposeOfEvent": [{"coding": [{"system": "urn:lead-hub:purpose",
                                                "code": line.purpose}],
                                    "text": purpose_text(line.purpose)}],
                "agent": [
                    {"who": {"display": "LEAD Hub"}, "requestor": False},
                    {"type": {"text": "recipient"}, "requestor": False,
                     "who": {"identifier": {"system": "urn:lead-hub:agency",
                                            "value": line.recipient},
                             "display": recipient["name"]}},
                ],
                "source": {"observer": {"display": "LEAD Hub"}, "site": self.site.site},
                "entity": [
                    {"what": {"identifier": {"system": "urn:lead-hub:participant",
                                             "value": self.participant_id}},
                     "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                              "code": "1", "display": "Person"}},
                    {"what": {"identifier": {"system": "urn:lead-hub:delivery",
                                             "value": line.delivery_id}},
                     "description": line.message_type, "detail": delivery_detail},
                    *(self._basis_entity(b) for b in line.bases if sent),
                ],
            }
            entries.append({"fullUrl": f"urn:uuid:{line.delivery_id}", "resource": event})
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
        Bundle.model_validate(bundle)
        return bundle


# reading the ledger ----------------------------------------------------------------------
def reached(failure: LedgerEntry) -> str:
    """What became of an attempt's bytes, from its attempt-failed row.

    Rows written before the hub recorded it name the subject "delivery"; their reason text
    says what happened. Anything unclear counts as sent (deny by default, in reporting too).
    """
    if failure.field_path in set(Reached):
        return failure.field_path
    text = failure.reason
    if "refused the delivery with HTTP" in text:
        return Reached.REFUSED.value
    if "answered HTTP" in text:
        return Reached.ERROR_ANSWER.value
    if "timed out" in text:
        return Reached.TIMED_OUT.value
    if "unreachable (ConnectError)" in text:
        return Reached.NOT_SENT.value
    return Reached.NO_ANSWER.value


def _basis(r: LedgerEntry) -> Basis:
    kind = r.basis_kind or (BasisKind.CONSENT.value if r.legal_basis.startswith("Consent/")
                            else BasisKind.NONE.value)
    return Basis(kind, r.legal_basis if REFERENCE.match(r.legal_basis) else None)


def _delivery_lines(rows: list[LedgerEntry], status: str | None) -> list[Line]:
    """What one delivery's ledger rows say: a disclosure line, a withheld line, both or neither."""
    by_attempt: dict[int, list[LedgerEntry]] = defaultdict(list)
    failures: dict[int, LedgerEntry] = {}
    for r in rows:
        if r.decision == ATTEMPT_FAILED:
            failures[r.attempt] = r
        else:
            by_attempt[r.attempt].append(r)
    if not by_attempt:
        return []
    last = max(by_attempt)
    sent: list[tuple[list[LedgerEntry], str, str]] = []  # (rows, outcome, answer)
    for attempt in sorted(by_attempt):
        entries = by_attempt[attempt]
        if not any(r.decision == DISCLOSED for r in entries):
            continue  # nothing of this attempt left the hub
        if status == "delivered" and attempt == last:
            sent.append((entries, ACCEPTED, ""))
        elif attempt in failures:
            outcome = reached(failures[attempt])
            if outcome != Reached.NOT_SENT.value:
                sent.append((entries, outcome, failures[attempt].reason))
        else:
            sent.append((entries, UNKNOWN, ""))
    out = []
    if sent:
        entries, outcome, answer = next((s for s in sent if s[1] == ACCEPTED), sent[-1])
        first = entries[0]
        every = [r for e, _, _ in sent for r in e if r.decision == DISCLOSED]
        out.append(Line(
            aware(first.recorded_at), first.delivery_id, first.message_type, first.recipient,
            first.purpose, _unique([_basis(r) for r in every]),
            next((r.notice for r in every if r.notice), None),
            _unique([(r.field_path, r.data_class) for r in every]),
            [(r.field_path, r.data_class, r.reason) for r in entries if r.decision == WITHHELD],
            outcome, answer))
    if status == "withheld":
        entries = by_attempt[last]
        first = entries[0]
        out.append(Line(
            aware(first.recorded_at), first.delivery_id, first.message_type, first.recipient,
            first.purpose, [], None, [],
            [(r.field_path, r.data_class, r.reason) for r in entries if r.decision == WITHHELD],
            WITHHELD))
    return out


def build_accounting(hub: Any, participant_id: str, start: datetime, end: datetime) -> Accounting:
    """The accounting for one participant: disclosures and withholdings between start and end."""
    _period(start, end)
    with unit_of_work(hub.engine) as s:
        rows = s.exec(
            select(LedgerEntry).where(
                LedgerEntry.participant_id == participant_id,
                LedgerEntry.site == hub.site.site,
                LedgerEntry.recorded_at >= start, LedgerEntry.recorded_at < end,
                LedgerEntry.decision.in_(  # type: ignore[attr-defined]
                    (DISCLOSED, WITHHELD, ATTEMPT_FAILED)))
            .order_by(LedgerEntry.seq)).all()  # type: ignore[arg-type]
        delivery_ids = {r.delivery_id for r in rows}
        statuses = {d.id: d.status for d in s.exec(
            select(Delivery).where(Delivery.id.in_(delivery_ids))).all()}  # type: ignore[attr-defined]
    by_delivery: dict[str, list[LedgerEntry]] = defaultdict(list)
    for r in rows:
        by_delivery[r.delivery_id].append(r)
    disclosed: list[Line] = []
    withheld: list[Line] = []
    for delivery_id, entries in by_delivery.items():
        for line in _delivery_lines(entries, statuses.get(delivery_id)):
            (withheld if line.outcome == WITHHELD else disclosed).append(line)
    ids = {m.group(1) for line in disclosed for b in line.bases
           if (m := REFERENCE.match(b.reference or ""))}
    return Accounting(hub.site, participant_id, start, end, disclosed, withheld,
                      hub.registry.authorities(ids))
