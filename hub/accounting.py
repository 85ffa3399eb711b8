"""Accounting of disclosures (45 CFR 164.528(b), 42 CFR 2.24, 2.25) for one patient and period.

Built from the ledger: every delivery that reached a recipient, field by field, with its
legal basis and the 2.32 statement that went along; repeated disclosures to one recipient
for one purpose summarised (the first in full, how many, the last date); and, which no
paper log has, what was withheld and why.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from sqlmodel import select

from hub.db.session import unit_of_work
from hub.db.store import aware
from hub.db.tables import Delivery, LedgerEntry
from hub.errors import BadInput, Problem
from hub.ledger import DISCLOSED, WITHHELD
from hub.site import Site

MAX_PERIOD = timedelta(days=3 * 366)  # three years, leap days included
PURPOSES = {"TREAT": "treatment", "HPAYMT": "payment", "HOPERAT": "health care operations",
            "LEAD-CJ-MONITORING": "criminal-justice monitoring of LEAD participation (2.35)",
            "LEAD-CHARGE-DECISION": "the DA's decision on holding charges"}


@dataclass
class Line:
    """One disclosure (or withholding) to one recipient: the fields of one delivery."""

    date: datetime
    delivery_id: str
    message_type: str
    recipient: str
    purpose: str
    legal_basis: list[str]
    notice: str | None
    fields: list[tuple[str, str]]  # (path, data class)
    withheld: list[tuple[str, str, str]] = field(default_factory=list)  # (path, class, reason)


def _period(start: datetime, end: datetime) -> None:
    problems = []
    if end <= start:
        problems.append(Problem("to", "must be after 'from'"))
    if end - start > MAX_PERIOD:
        problems.append(Problem("from", "an accounting covers at most 3 years (42 CFR 2.24)"))
    if problems:
        raise BadInput("bad accounting period", problems)


class Accounting:
    def __init__(self, site: Site, participant_id: str, start: datetime, end: datetime,
                 disclosed: list[Line], withheld: list[Line]) -> None:
        self.site, self.participant_id = site, participant_id
        self.start, self.end = start, end
        self.disclosed, self.withheld = disclosed, withheld

    def _recipient(self, agency: str) -> dict[str, Any]:
        a = self.site.agencies.get(agency)
        return {"id": agency, "name": a.name if a else agency, "address": a.address if a else None}

    def _description(self, line: Line) -> str:
        classes = sorted({c for _, c in line.fields})
        return f"{line.message_type}: {', '.join(classes)} ({len(line.fields)} field(s))"

    def groups(self) -> list[list[Line]]:
        """Disclosures to one recipient for one purpose, oldest first."""
        grouped: dict[tuple[str, str], list[Line]] = defaultdict(list)
        for line in sorted(self.disclosed, key=lambda x: x.date):
            grouped[(line.recipient, line.purpose)].append(line)
        return sorted(grouped.values(), key=lambda g: g[0].date)

    def to_json(self) -> dict[str, Any]:
        disclosures = []
        for group in self.groups():
            first = group[0]
            disclosures.append({
                "date": first.date.isoformat(),
                "recipient": self._recipient(first.recipient),
                "description": self._description(first),
                "purpose": first.purpose,
                "purpose_text": PURPOSES.get(first.purpose, first.purpose),
                "legal_basis": first.legal_basis,
                "notice": first.notice,
                "fields": [{"path": p, "data_class": c} for p, c in first.fields],
                "withheld_fields": [{"path": p, "data_class": c, "reason": r}
                                    for p, c, r in first.withheld],
                "count": len(group),
                "last_date": group[-1].date.isoformat(),
                "deliveries": [line.delivery_id for line in group],
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
                         "purpose", "legal_basis", "notice", "fields", "count", "last_date",
                         "withheld_reason"])
        data = self.to_json()
        for d in data["disclosures"]:
            writer.writerow(["disclosed", d["date"], d["recipient"]["name"],
                             d["recipient"]["address"] or "", d["description"], d["purpose"],
                             "; ".join(d["legal_basis"]), d["notice"] or "",
                             "; ".join(f["path"] for f in d["fields"]), d["count"],
                             d["last_date"], "; ".join(sorted({f["reason"] for f in
                                                               d["withheld_fields"]}))])
        for w in data["withheld"]:
            writer.writerow(["withheld", w["date"], w["recipient"]["name"],
                             w["recipient"]["address"] or "", w["description"], w["purpose"],
                             "", "", "; ".join(f["path"] for f in w["fields"]), 1, w["date"],
                             "; ".join(w["reason"])])
        return out.getvalue()

    def to_fhir(self) -> dict[str, Any]:
        """A collection Bundle of AuditEvents, validated against the R4B models."""
        entries = []
        for line in sorted(self.disclosed + self.withheld, key=lambda x: x.date):
            sent = line in self.disclosed
            recipient = self._recipient(line.recipient)
            event: dict[str, Any] = {
                "resourceType": "AuditEvent",
                "type": {"system": "http://dicom.nema.org/resources/ontology/DCM",
                         "code": "110106", "display": "Export"},
                "action": "E",
                "recorded": line.date.isoformat(),
                "outcome": "0" if sent else "4",
                "outcomeDesc": ("disclosed" if sent else "withheld: " + "; ".join(
                    sorted({r for _, _, r in line.withheld})))[:1000],
                "purposeOfEvent": [{"coding": [{"system": "urn:lead-hub:purpose",
                                                "code": line.purpose}],
                                    "text": PURPOSES.get(line.purpose, line.purpose)}],
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
                     "description": line.message_type,
                     "detail": [
                         {"type": "fields" if sent else "withheld-fields",
                          "valueString": "; ".join(p for p, _ in line.fields) if sent
                          else "; ".join(p for p, _, _ in line.withheld)},
                         {"type": "legal-basis",
                          "valueString": "; ".join(line.legal_basis) or "none"},
                         {"type": "part2-notice", "valueString": line.notice or "none"}]},
                ],
            }
            entries.append({"fullUrl": f"urn:uuid:{line.delivery_id}", "resource": event})
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
        Bundle.model_validate(bundle)
        return bundle


def build_accounting(hub: Any, participant_id: str, start: datetime, end: datetime) -> Accounting:
    """The accounting for one participant: disclosures and withholdings between start and end."""
    _period(start, end)
    with unit_of_work(hub.engine) as s:
        rows = s.exec(
            select(LedgerEntry).where(
                LedgerEntry.participant_id == participant_id,
                LedgerEntry.site == hub.site.site,
                LedgerEntry.recorded_at >= start, LedgerEntry.recorded_at < end,
                LedgerEntry.decision.in_((DISCLOSED, WITHHELD)))  # type: ignore[attr-defined]
            .order_by(LedgerEntry.seq)).all()  # type: ignore[arg-type]
        delivery_ids = {r.delivery_id for r in rows}
        statuses = {d.id: d.status for d in s.exec(
            select(Delivery).where(Delivery.id.in_(delivery_ids))).all()}  # type: ignore[attr-defined]
    last_attempt: dict[str, int] = {}
    for r in rows:
        last_attempt[r.delivery_id] = max(last_attempt.get(r.delivery_id, 0), r.attempt)
    lines: dict[str, Line] = {}
    for r in rows:
        if r.attempt != last_attempt[r.delivery_id]:
            continue  # earlier attempts did not complete; the one that did is what left
        line = lines.setdefault(r.delivery_id, Line(
            aware(r.recorded_at), r.delivery_id, r.message_type, r.recipient, r.purpose, [],
            r.notice, []))
        if r.decision == DISCLOSED:
            line.fields.append((r.field_path, r.data_class))
            if r.legal_basis not in line.legal_basis:
                line.legal_basis.append(r.legal_basis)
            line.notice = line.notice or r.notice
        else:
            line.withheld.append((r.field_path, r.data_class, r.reason))
    disclosed = [x for d, x in lines.items() if statuses.get(d) == "delivered" and x.fields]
    withheld = [x for d, x in lines.items() if statuses.get(d) == "withheld"]
    return Accounting(hub.site, participant_id, start, end, disclosed, withheld)
