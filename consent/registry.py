"""The consent registry: every version kept, revocations recorded, court orders entered.

Registration checks the consent on its face (42 CFR 2.31); decisions read the newest
version of each consent at the moment of disclosure.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from consent.case_events import CaseHistory, event_time
from consent.engine import unreleasable_problem
from consent.fhir_consent import REVOCATION, Terms, read_terms, validate_resource
from consent.model import FINAL_DISPOSITION, Consent, ConsentKind
from hub.classification import DataClass
from hub.crypto import Sealer
from hub.db.session import unit_of_work
from hub.db.store import Store, aware
from hub.db.tables import CaseEvent, ConsentVersion, Message, Participant, utcnow
from hub.errors import BadInput, Conflict, NotFound, Problem
from hub.ledger_chain import Chain
from hub.messages import MessageType
from hub.site import Site


@dataclass(frozen=True)
class CourtOrderRecord:
    id: str
    version: int
    participant_id: str
    status: str
    recorded_at: datetime
    recorded_by: str
    order: dict[str, Any]  # as entered: case, court, docket, period, parties, classes


@dataclass(frozen=True)
class Authority:
    """A consent's or court order's kind, and for a court order its court and docket."""

    kind: ConsentKind
    court: str = ""
    docket: str = ""


@dataclass(frozen=True)
class Registered:
    consent_id: str
    version: int
    resource: dict[str, Any]


def _terms_json(t: Terms, participant_id: str, case_ref: str | None) -> str:
    def iso(d: datetime | None) -> str | None:
        return d.isoformat() if d else None

    return orjson.dumps({
        "kind": t.kind.value, "participant_id": participant_id, "case_ref": case_ref,
        "disclosers": sorted(t.disclosers), "recipients": sorted(t.recipients),
        "purposes": sorted(t.purposes), "classes": sorted(t.classes),
        "denied_classes": sorted(t.denied_classes), "valid_from": iso(t.valid_from),
        "valid_until": iso(t.valid_until), "signed_at": iso(t.signed_at),
        "expiry_event": t.expiry_event, "revocable_after": iso(t.revocable_after),
        "revocable_after_event": t.revocable_after_event,
    }).decode()


def _set_revoked_at(resource: dict[str, Any], at: datetime) -> None:
    for ext in resource.get("extension", []):
        if ext.get("url") == REVOCATION:
            for sub in ext["extension"]:
                if sub["url"] == "revokedAt":
                    sub["valueDateTime"] = at.isoformat()


def _dt(v: str | None) -> datetime | None:
    return datetime.fromisoformat(v) if v else None


def _aware(d: datetime | None) -> datetime | None:
    return aware(d) if d else None


class Registry:
    def __init__(self, engine: Engine, sealer: Sealer, site: Site, store: Store) -> None:
        self._engine = engine
        self._sealer = sealer
        self._site = site
        self._store = store
        self._agency_kinds = {k: a.kind.value for k, a in site.agencies.items()}

    # registration ---------------------------------------------------------------------------
    def register(self, data: Any, by: str, holder: str | None = None) -> Registered:
        """Register a consent; `holder`, when given, is the program registering it, which
        must be among those it lets disclose (a program keeps only its own consents)."""
        resource = validate_resource(data)
        terms = read_terms(resource, self._agency_kinds)
        self._held_by(terms.disclosers, holder)
        participant, case_ref = self._participant(terms)
        consent_id = str(uuid.uuid4())
        return self._write(consent_id, 1, resource, terms, participant, case_ref, by)

    def update(self, consent_id: str, data: Any, by: str, holder: str | None = None) -> Registered:
        current = self._current_row(consent_id, holder=holder)
        resource = validate_resource(data)
        terms = read_terms(resource, self._agency_kinds)
        self._held_by(terms.disclosers, holder)
        participant, case_ref = self._participant(terms)
        if participant != current.participant_id or \
                case_ref != self._case_of(current, orjson.loads(current.terms)):
            raise BadInput("a consent cannot change patient or case",
                           [Problem("Consent.patient", "register a new consent instead")])
        if current.status == "revoked":
            raise Conflict(f"Consent/{consent_id} is revoked; register a new consent")
        return self._write(consent_id, current.version + 1, resource, terms, participant,
                           case_ref, by)

    def _write(self, consent_id: str, version: int, resource: dict[str, Any], terms: Terms,
               participant: str, case_ref: str | None, by: str) -> Registered:
        now = utcnow()
        resource = {**resource, "id": consent_id,
                    "meta": {**resource.get("meta", {}), "versionId": str(version),
                             "lastUpdated": now.isoformat()}}
        row = ConsentVersion(
            consent_id=consent_id, version=version, site=self._site.site,
            participant_id=participant, kind=terms.kind.value, status="active",
            terms=_terms_json(terms, participant, case_ref),
            resource=self._sealer.seal(orjson.dumps(resource)), recorded_at=now,
            recorded_by=by[:120],
        )
        try:
            with unit_of_work(self._engine) as s:
                s.add(row)
        except IntegrityError:
            raise Conflict(f"Consent/{consent_id} changed at the same time; read it and retry") \
                from None
        return Registered(consent_id, version, resource)

    @staticmethod
    def _held_by(disclosers: frozenset[str], holder: str | None) -> None:
        if holder is not None and holder not in disclosers:
            raise BadInput("a program keeps only its own consents", [Problem(
                "Consent.organization", f"must name {holder}, the program registering it")])

    def _participant(self, terms: Terms) -> tuple[str, str | None]:
        """The participant, and the case when the consent names one (it is bound to it)."""
        if terms.patient_system.endswith(":case"):
            case = self._store.case(self._site.site, terms.patient_value)
            if case is None or case.participant_id is None:
                raise BadInput("unknown patient", [Problem(
                    "Consent.patient.identifier",
                    "no diversion case with this id at this site (or not yet processed: retry)")])
            return case.participant_id, terms.patient_value
        with unit_of_work(self._engine) as s:
            found = s.get(Participant, terms.patient_value)
        if found is None or found.site != self._site.site:
            raise BadInput("unknown patient", [Problem("Consent.patient.identifier",
                                                       "no such participant at this site")])
        return found.id, None

    def _case_of(self, row: ConsentVersion, terms: dict[str, Any]) -> str | None:
        """The case a consent is bound to; versions written before it was kept say it in
        the source (a Consent's patient identifier, a court order's case)."""
        if "case_ref" in terms:
            return terms["case_ref"]  # type: ignore[no-any-return]
        source = orjson.loads(self._sealer.open(row.resource))
        if source.get("resourceType") == "CourtOrder":
            return str(source["case_ref"])
        ident = source.get("patient", {}).get("identifier", {})
        return str(ident["value"]) if ident.get("system", "").endswith(":case") else None

    def add_court_order(self, order: dict[str, Any], by: str) -> Registered:
        """A court order, entered by a compliance officer, authorising what it names only."""
        p: list[Problem] = []
        for field in ("disclosers", "recipients"):
            unknown = sorted(set(order[field]) - self._site.agencies.keys())
            if unknown:
                p.append(Problem(f"$.{field}", f"no agency {', '.join(unknown)} in this site"))
        classes = set()
        for i, code in enumerate(order["classes"]):
            try:
                classes.add(DataClass(code))
            except ValueError:
                p.append(Problem(f"$.classes[{i}]", f"one of {', '.join(DataClass)}"))
        problem = unreleasable_problem(ConsentKind.COURT_ORDER,
                                       {r: classes for r in order["recipients"]},
                                       self._agency_kinds)
        if problem:
            p.append(Problem("$.classes", problem))
        issued, until = (datetime.fromisoformat(order[k]) for k in ("issued_at", "valid_until"))
        if until <= issued:
            p.append(Problem("$.valid_until", "must be after issued_at"))
        if p:
            raise BadInput("this court order cannot be entered", p)
        terms = Terms(
            kind=ConsentKind.COURT_ORDER, patient_system="urn:lead-hub:case",
            patient_value=order["case_ref"], disclosers=frozenset(order["disclosers"]),
            recipients=frozenset(order["recipients"]), purposes=frozenset(order["purposes"]),
            classes=frozenset(classes), denied_classes=frozenset(), valid_from=issued,
            valid_until=until, signed_at=issued, expiry_event=None, revocable_after=None,
            revocable_after_event=None)
        participant, case_ref = self._participant(terms)
        return self._write(str(uuid.uuid4()), 1, {"resourceType": "CourtOrder", **order}, terms,
                           participant, case_ref, by)

    # reading --------------------------------------------------------------------------------
    def _versions(self, consent_id: str, court_order: bool) -> Any:
        """Versions of one consent (or, with court_order, one court order) at this site.

        The two share a table but never an address: a court order is not a FHIR Consent.
        """
        kind = ConsentVersion.kind == ConsentKind.COURT_ORDER.value
        return select(ConsentVersion).where(
            ConsentVersion.consent_id == consent_id, ConsentVersion.site == self._site.site,
            kind if court_order else ~kind)  # type: ignore[operator]

    def _current_row(self, consent_id: str, court_order: bool = False,
                     holder: str | None = None) -> ConsentVersion:
        """The newest version; with `holder`, only if that program holds the consent (else it
        is not found: another program's consents, names included, are not its to see)."""
        with unit_of_work(self._engine) as s:
            row: ConsentVersion | None = s.exec(self._versions(consent_id, court_order).order_by(
                ConsentVersion.version.desc())).first()  # type: ignore[attr-defined]
        if row is not None and holder is not None and \
                holder not in orjson.loads(row.terms)["disclosers"]:
            row = None
        if row is None:
            raise NotFound(f"no court order {consent_id}" if court_order
                           else f"no Consent/{consent_id}")
        return row

    def read(self, consent_id: str, version: int | None = None,
             holder: str | None = None) -> dict[str, Any]:
        current = self._current_row(consent_id, holder=holder)
        if version is None:
            row = current
        else:
            with unit_of_work(self._engine) as s:
                row = s.exec(self._versions(consent_id, False)
                             .where(ConsentVersion.version == version)).first()
            if row is None:
                raise NotFound(f"no Consent/{consent_id}/_history/{version}")
        return orjson.loads(self._sealer.open(row.resource))  # type: ignore[no-any-return]

    def history(self, consent_id: str, holder: str | None = None) -> list[dict[str, Any]]:
        self._current_row(consent_id, holder=holder)
        with unit_of_work(self._engine) as s:
            rows = s.exec(self._versions(consent_id, False).order_by(
                ConsentVersion.version.desc())).all()  # type: ignore[attr-defined]
        if not rows:
            raise NotFound(f"no Consent/{consent_id}")
        return [orjson.loads(self._sealer.open(r.resource)) for r in rows]

    def court_order(self, order_id: str) -> CourtOrderRecord:
        """A court order as entered, with who entered it and when (compliance officers only)."""
        row = self._current_row(order_id, court_order=True)
        return CourtOrderRecord(row.consent_id, row.version, row.participant_id, row.status,
                                aware(row.recorded_at), row.recorded_by,
                                orjson.loads(self._sealer.open(row.resource)))

    def authorities(self, ids: Iterable[str]) -> dict[str, Authority]:
        """What each consent or court order id is, for naming it in an accounting."""
        wanted = set(ids)
        if not wanted:
            return {}
        with unit_of_work(self._engine) as s:
            rows = s.exec(select(ConsentVersion).where(
                ConsentVersion.consent_id.in_(wanted),  # type: ignore[attr-defined]
                ConsentVersion.site == self._site.site)
                .order_by(ConsentVersion.version)).all()  # type: ignore[arg-type]
        out: dict[str, Authority] = {}
        for r in rows:  # the newest version of each wins
            order = (orjson.loads(self._sealer.open(r.resource))
                     if r.kind == ConsentKind.COURT_ORDER.value else {})
            out[r.consent_id] = Authority(ConsentKind(r.kind), str(order.get("court", "")),
                                          str(order.get("docket", "")))
        return out

    def consents_for(self, participant_id: str) -> list[Consent]:
        """The newest version of each consent and court order for a participant."""
        with unit_of_work(self._engine) as s:
            newest = (select(ConsentVersion.consent_id,
                             func.max(ConsentVersion.version).label("v"))
                      .where(ConsentVersion.participant_id == participant_id,
                             ConsentVersion.site == self._site.site)
                      .group_by(ConsentVersion.consent_id).subquery())
            rows = s.exec(select(ConsentVersion).join(
                newest, (ConsentVersion.consent_id == newest.c.consent_id)  # type: ignore[arg-type]
                & (ConsentVersion.version == newest.c.v))).all()
        # Decisions need the case events only to end a consent at an expiry event: most
        # consents end on a date, so most deliveries read no events at all.
        needs_events = any(orjson.loads(r.terms)["expiry_event"] for r in rows)
        history = self._history(participant_id) if needs_events else CaseHistory()
        return [self._consent(r, history) for r in rows]

    def _consent(self, row: ConsentVersion, history: CaseHistory) -> Consent:
        t = orjson.loads(row.terms)
        case_ref = self._case_of(row, t)
        signed_at: datetime = _dt(t["signed_at"])  # type: ignore[assignment]
        return Consent(
            id=row.consent_id, version=row.version, kind=ConsentKind(t["kind"]),
            site=row.site, participant_id=row.participant_id,
            disclosers=frozenset(t["disclosers"]), recipients=frozenset(t["recipients"]),
            purposes=frozenset(t["purposes"]),
            classes=frozenset(DataClass(c) for c in t["classes"]),
            denied_classes=frozenset(DataClass(c) for c in t["denied_classes"]),
            valid_from=_dt(t["valid_from"]),  # type: ignore[arg-type]
            valid_until=_dt(t["valid_until"]), signed_at=_dt(t["signed_at"]),  # type: ignore[arg-type]
            expiry_event=t["expiry_event"],
            ended_at=(event_time(history, t["expiry_event"], case_ref, signed_at)
                      if t["expiry_event"] else None),
            revoked_at=_aware(row.revoked_at),
            revocable_after=_dt(t["revocable_after"]),
            revocable_after_event=t["revocable_after_event"],
            case_ref=case_ref,
        )

    # revocation and events ------------------------------------------------------------------
    def revoke(self, consent_id: str, method: str, revoked_by: str, by: str,
               at: datetime | None = None, holder: str | None = None) -> Registered:
        """Revoke from `at` (default now). A 2.35 consent refuses before it may be revoked."""
        row = self._current_row(consent_id, holder=holder)
        if method not in ("written", "electronic"):
            raise BadInput("how was it revoked?", [Problem("method", "written or electronic")])
        if not revoked_by.strip():
            raise BadInput("who revoked it?", [Problem("revokedBy", "name the person")])
        if row.status == "revoked":
            raise Conflict(f"Consent/{consent_id} is already revoked")
        now = utcnow()
        explicit_time = at
        at = at or now
        history = self._history(row.participant_id)
        current = self._consent(row, history)
        if current.revocable_after and at < current.revocable_after:
            raise Conflict(f"§2.35: Consent/{consent_id} cannot be revoked before "
                           f"{current.revocable_after.isoformat()}")
        if current.revocable_after_event == FINAL_DISPOSITION and event_time(
                history, FINAL_DISPOSITION, current.case_ref, current.signed_at) is None:
            of = f"case {current.case_ref}" if current.case_ref else "every one of the " \
                "patient's cases"
            raise Conflict(f"§2.35: Consent/{consent_id} cannot be revoked before the final "
                           f"disposition of the charges of {of}, which the DA has not reported")
        if at < now - timedelta(days=366) or at > now + timedelta(minutes=5):
            raise BadInput("bad revocation time", [Problem("revokedAt", "within the last year, "
                                                           "not in the future")])
        resource = orjson.loads(self._sealer.open(row.resource))
        resource["status"] = "inactive"
        resource.setdefault("extension", []).append({"url": REVOCATION, "extension": [
            {"url": "method", "valueCode": method}, {"url": "revokedBy", "valueString": revoked_by},
            {"url": "revokedAt", "valueDateTime": at.isoformat()}]})
        version = row.version + 1
        resource["meta"] = {**resource.get("meta", {}), "versionId": str(version),
                            "lastUpdated": now.isoformat()}
        new = ConsentVersion(
            consent_id=consent_id, version=version, site=row.site,
            participant_id=row.participant_id, kind=row.kind, status="revoked",
            terms=row.terms, resource=self._sealer.seal(orjson.dumps(resource)),
            recorded_at=now, recorded_by=by[:120],
            revoked_at=at, revoked_by=revoked_by[:200], revocation_method=method)
        try:
            with unit_of_work(self._engine) as s:
                # Disclosure decisions hold this lock while they read consents and record
                # what they decided; stamping the revocation under it orders the two.
                Chain.lock(s)
                if explicit_time is None:
                    new.revoked_at = utcnow()
                    _set_revoked_at(resource, new.revoked_at)
                    new.resource = self._sealer.seal(orjson.dumps(resource))
                s.add(new)
        except IntegrityError:
            raise Conflict(f"Consent/{consent_id} changed at the same time; retry") from None
        return Registered(consent_id, new.version, resource)

    def _history(self, participant_id: str) -> CaseHistory:
        """The person's cases, and the events recorded against each."""
        with unit_of_work(self._engine) as s:
            events = s.exec(select(CaseEvent).where(
                CaseEvent.participant_id == participant_id,
                CaseEvent.site == self._site.site)).all()
            cases = s.exec(select(Message.id, Message.received_at).where(
                Message.participant_id == participant_id, Message.site == self._site.site,
                Message.type == MessageType.DIVERSION_NOTICE.value)).all()
        return CaseHistory({c: aware(at) for c, at in cases},
                           tuple((e.case_ref, e.event, aware(e.occurred_at)) for e in events))

    def record_event(self, participant_id: str, case_ref: str, event: str, at: datetime,
                     message_id: str) -> None:
        """Idempotent: the same message records its event once."""
        try:
            with unit_of_work(self._engine) as s:
                s.add(CaseEvent(site=self._site.site, participant_id=participant_id,
                                case_ref=case_ref, event=event, occurred_at=at,
                                message_id=message_id))
        except IntegrityError:
            pass
