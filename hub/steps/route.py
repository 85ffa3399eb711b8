"""Route step: the site's rules decide who receives what; one delivery per recipient."""

from __future__ import annotations

from typing import Any

from hub.db.store import Store, delivery_id
from hub.db.tables import Delivery
from hub.messages import MessageType, Referral
from hub.site import REFERRING_AGENCY, Site
from hub.steps.runner import Job, Next, Outcome


def project(form: MessageType, origin: MessageType, body: dict[str, Any], case_ref: str,
            referring_agency: str) -> dict[str, Any]:
    """The body as the recipient's form of the message (a diversion notice becomes a referral)."""
    if form == origin:
        return body
    if form == MessageType.REFERRAL and origin == MessageType.DIVERSION_NOTICE:
        referral = Referral(
            case_ref=case_ref,
            pathway=body["pathway"],
            referred_at=body["referred_at"],
            referring_agency=referring_agency,
            person=body["person"],
            contact=body.get("contact"),
            referral_reason=body.get("referral_reason"),
        )
        return referral.model_dump(mode="json", exclude_none=True)
    raise ValueError(f"no projection from {origin} to {form}")


class RouteStep:
    def __init__(self, site: Site, store: Store) -> None:
        self._site = site
        self._store = store

    def __call__(self, job: Job) -> list[Next]:
        rows, nexts = self._plan(job)
        self._store.add_deliveries(rows)
        return nexts

    def handle_batch(self, jobs: list[Job]) -> list[Outcome]:
        """Every job's deliveries recorded in one transaction; a job that cannot be planned
        fails alone."""
        outcomes: list[Outcome] = []
        rows: list[Delivery] = []
        for job in jobs:
            try:
                planned, nexts = self._plan(job)
            except Exception as exc:  # noqa: BLE001 (its message is parked, the rest go on)
                outcomes.append(exc)
                continue
            rows += planned
            outcomes.append(nexts)
        self._store.add_deliveries(rows)
        return outcomes

    def _plan(self, job: Job) -> tuple[list[Delivery], list[Next]]:
        """The deliveries a message makes, and the deliver step's job for each."""
        b = job.body
        origin = MessageType(b["type"])
        body: dict[str, Any] = b["body"]
        referring = b["referring_agency"]  # looked up once, by the ingest step
        rows: list[Delivery] = []
        nexts: list[Next] = []
        for target in self._site.routes_for(origin, body.get("pathway")):
            recipient = referring if target.to == REFERRING_AGENCY else target.to
            if not recipient or recipient == b["sender"] or recipient in {r.recipient for r in rows}:
                continue
            did = delivery_id(b["message_id"], recipient)
            rows.append(Delivery(id=did, message_id=b["message_id"], site=self._site.site,
                                 recipient=recipient, form=target.form.value,
                                 purpose=target.purpose))
            nexts.append(Next("deliver", {
                "delivery_id": did,
                "message_id": b["message_id"],
                "origin_type": origin.value,
                "form": target.form.value,
                "sender": b["sender"],
                "recipient": recipient,
                "purpose": target.purpose,
                "case_ref": b["case_ref"],
                "participant_id": b.get("participant_id"),
                "body": project(target.form, origin, body, b["case_ref"],
                                self._site.agencies[referring].name if referring else ""),
            }))
        return rows, nexts
