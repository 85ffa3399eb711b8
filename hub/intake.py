"""Accepting a message at the HTTP edge: parse, validate, de-duplicate, store, queue.

The caller hears `accepted` only after the message is in the database and RabbitMQ has
confirmed the ingest job, so a 202 is a promise the hub can keep.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson
from pydantic import ValidationError

from hub.broker import PublisherPool
from hub.crypto import Hasher, Sealer, sha256_hex
from hub.db.store import Store
from hub.db.tables import Message
from hub.errors import BadInput, Forbidden, HubError, Problem, json_path
from hub.messages import MODELS, Canonical, MessageType, Pathway
from hub.site import SUBMITTERS, AgencyKind, Site
from hub.steps.runner import JobCodec

IDEMPOTENCY_KEY_SCHEME = "h1:"  # marks a hashed key; rows stored before hold the raw key


@dataclass(frozen=True)
class Accepted:
    message_id: str
    duplicate: bool


def stored_idempotency_key(hasher: Hasher, site: str, sender: str, key: str) -> str:
    """What the database keeps of an Idempotency-Key: a keyed hash, never the key itself.

    Clients put names and phone numbers in their keys. The site and sender are hashed in so
    that equal keys of two agencies cannot be linked by their stored form.
    """
    return IDEMPOTENCY_KEY_SCHEME + hasher.of(f"{site}|idempotency-key|{sender}|{key}")


def parse(message_type: MessageType, raw: bytes) -> Canonical:
    """Validate a body against its canonical model; every problem is reported, with its path."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadInput("body is not valid JSON", [Problem("$", str(exc))]) from None
    if not isinstance(data, dict):
        raise BadInput("body must be a JSON object", [Problem("$", "expected an object")])
    try:
        return MODELS[message_type].model_validate(data)
    except ValidationError as exc:
        problems = [Problem(json_path(tuple(e["loc"])), e["msg"]) for e in exc.errors()]
        raise BadInput(f"this {message_type} has {len(problems)} problem(s)", problems) from None


class Intake:
    def __init__(self, site: Site, store: Store, publishers: PublisherPool, codec: JobCodec,
                 sealer: Sealer, hasher: Hasher) -> None:
        self._site = site
        self._store = store
        self._publishers = publishers
        self._codec = codec
        self._sealer = sealer
        self._hasher = hasher

    def accept(
        self, sender: str, message_type: MessageType, raw: bytes, idempotency_key: str | None
    ) -> Accepted:
        self.check_submitter(sender, message_type)
        message = parse(message_type, raw)
        self._check_semantics(sender, message_type, message)
        body = message.model_dump(mode="json", exclude_none=True)
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        key = (None if idempotency_key is None else
               stored_idempotency_key(self._hasher, self._site.site, sender, idempotency_key))
        stored = self._store.add_message(
            Message(
                id=str(uuid.uuid4()),
                site=self._site.site,
                sender=sender,
                type=message_type.value,
                idempotency_key=key,
                body_sha256=sha256_hex(canonical),
                body=self._sealer.seal(canonical),
            ),
            legacy_key=idempotency_key,
        )
        if stored.duplicate and stored.body_sha256 != sha256_hex(canonical):
            raise BadInput(
                "Idempotency-Key reused with a different body",
                [Problem("header:Idempotency-Key",
                         "this key was used for another message; use a new key for new content")],
            )
        # Re-publishing a duplicate is harmless (every step is idempotent) and guarantees that
        # a message stored just before a broker failure still gets queued on the client's retry.
        job = {"message_id": stored.message_id, "type": message_type.value, "sender": sender,
               "body": body}
        try:
            with self._publishers.channel() as ch:
                ch.publish(self._codec.encode("ingest", job, stored.message_id))
        except HubError:
            # The sender hears "not accepted" (503), so the hub must not keep a copy that
            # nothing will ever route. A duplicate's first copy stays for its own retry.
            if not stored.duplicate:
                self._store.discard_message(stored.message_id)
            raise
        return Accepted(stored.message_id, stored.duplicate)

    def check_submitter(self, sender: str, message_type: MessageType) -> None:
        agency = self._site.agencies.get(sender)
        if agency is None or agency.kind not in SUBMITTERS.get(message_type, set()):
            kind = agency.kind.value if agency else "unknown"
            raise Forbidden(f"a {kind} agency cannot submit a {message_type}")

    def _check_semantics(self, sender: str, message_type: MessageType, msg: Canonical) -> None:
        agency = self._site.agencies[sender]
        pathway = getattr(msg, "pathway", None)
        if agency.kind == AgencyKind.COMMUNITY and pathway not in (None, Pathway.COMMUNITY):
            raise BadInput("community referrers send community referrals only",
                           [Problem("$.pathway", f"must be {Pathway.COMMUNITY.value!r}")])
        if pathway == Pathway.ARREST_DIVERSION and getattr(msg, "incident", None) is None:
            raise BadInput("an arrest diversion needs the incident",
                           [Problem("$.incident", "required for pathway 'arrest-diversion'")])
        case_ref = getattr(msg, "case_ref", None)
        if case_ref is not None and self._store.case(self._site.site, case_ref) is None:
            raise BadInput(
                "case_ref does not name a referral known to this hub",
                [Problem("$.case_ref",
                         "use the message id the hub returned for the diversion notice")],
            )
