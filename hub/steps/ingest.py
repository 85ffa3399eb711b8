"""Ingest step: tie the message to its case and participant, then hand it to routing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consent.model import FINAL_DISPOSITION
from consent.registry import Registry
from hub.crypto import Hasher
from hub.db.store import Store
from hub.errors import PermanentError
from hub.identity import dob_name_hmac, state_id_hmac
from hub.messages import HoldStatus, MessageType
from hub.steps.runner import Job, Next


class IngestStep:
    def __init__(self, site: str, store: Store, hasher: Hasher, registry: Registry) -> None:
        self._site = site
        self._store = store
        self._hasher = hasher
        self._registry = registry

    def __call__(self, job: Job) -> list[Next]:
        message_id: str = job.body["message_id"]
        message_type = MessageType(job.body["type"])
        body: dict[str, Any] = job.body["body"]
        if message_type == MessageType.DIVERSION_NOTICE:
            case_ref, participant_id = message_id, self._participant(body["person"])
            referring = job.body["sender"]
        else:
            case_ref = body["case_ref"]
            case = self._store.case(self._site, case_ref)
            if case is None:
                raise PermanentError("case_ref names no known diversion notice")
            participant_id, referring = case.participant_id, case.sender
        self._store.set_participant(message_id, case_ref, participant_id)
        if (message_type == MessageType.CHARGE_HOLD and participant_id
                and body["status"] == HoldStatus.FINAL_DISPOSITION):
            self._registry.record_event(participant_id, case_ref, FINAL_DISPOSITION,
                                        datetime.fromisoformat(body["decided_at"]), message_id)
        return [Next("route", {**job.body, "case_ref": case_ref, "participant_id": participant_id,
                               "referring_agency": referring})]

    def _participant(self, person: dict[str, Any]) -> str:
        state_id = person.get("state_id")
        state_hmac = state_id_hmac(self._hasher, self._site, state_id) if state_id else None
        dob_name = dob_name_hmac(self._hasher, self._site, person["family_name"],
                                 person["given_name"], person["date_of_birth"])
        return self._store.match_participant(self._site, state_hmac, dob_name)
