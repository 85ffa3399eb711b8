"""Deliver step: gate every field, write the ledger, then send (push) or keep (inbox).

Consent is asked here, at the moment of disclosure, on every attempt and every replay.
The ledger rows for an attempt are committed in the same transaction that claims the
delivery, so no byte leaves before its record exists.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import structlog
from sqlmodel import SQLModel

from consent.decisions import Decision, DisclosureContext, DisclosurePolicy, Party
from hub import ledger_events
from hub.classification import Catalogue, FieldValue
from hub.crypto import Hasher
from hub.db.store import Store
from hub.db.tables import LedgerEntry, utcnow
from hub.errors import Busy, HubError, PermanentError, Reached, TransientError
from hub.inbox import Inbox
from hub.ledger import SHORT_NOTICE, entries_for
from hub.messages import MessageType
from hub.outbound import DeliveryMeta, Push, Render, Rendered
from hub.site import Agency, Site
from hub.steps.runner import Job, Next, Outcome

log = structlog.get_logger("hub.deliver")
PUSH_THREADS = 32  # pushes in flight per deliver worker, across all agencies


def _party(agency_id: str, agency: Agency) -> Party:
    return Party(agency_id, agency.kind.value, agency.part2_program, agency.tpo_covered_entity)


def keep_only(body: dict[str, Any], fields: list[FieldValue], decisions: list[Decision]) -> dict[str, Any]:
    """The body with every denied leaf removed (and containers left empty by that)."""
    denied = {f.path for f, d in zip(fields, decisions, strict=True) if not d.permit}
    return _prune(body, "", denied) if denied else body


def _prune(node: Any, path: str, denied: set[str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            sub = f"{path}.{key}" if path else key
            kept = _prune(value, sub, denied)
            if kept is not None:
                out[key] = kept
        return out or None
    if isinstance(node, list):
        items = [_prune(v, f"{path}[{i}]", denied) for i, v in enumerate(node)]
        kept_items = [v for v in items if v is not None]
        return kept_items or None
    return None if path in denied else node


@dataclass(frozen=True)
class _Outcome:
    records: list[SQLModel]
    final_status: str | None  # None: push it now
    rendered: Rendered | None
    event: str
    fields: int
    withheld: int


class DeliverStep:
    def __init__(self, site: Site, store: Store, catalogue: Catalogue, policy: DisclosurePolicy,
                 hasher: Hasher, inbox: Inbox, pusher: Push, lease: timedelta,
                 renderers: dict[str, Render]) -> None:
        self._site = site
        self._store = store
        self._catalogue = catalogue
        self._policy = policy
        self._hasher = hasher
        self._inbox = inbox
        self._pusher = pusher
        self._lease = lease
        self._renderers = renderers  # by the recipient's format (json, fhir-r4)
        self._executor: ThreadPoolExecutor | None = None
        self._gates: dict[str, threading.Semaphore] = {}
        self._gates_lock = threading.Lock()

    def handle_batch(self, jobs: list[Job]) -> list[Outcome]:
        """A batch as one unit: every delivery claimed, decided and ledgered in one
        transaction, the pushes sent concurrently (bounded per agency), the outcomes and
        failed attempts recorded in one more. A delivery that fails fails alone."""
        outcomes: list[Outcome] = [None] * len(jobs)
        index: dict[str, int] = {}
        for i, job in enumerate(jobs):
            b = job.body
            missing = {b["sender"], b["recipient"]} - self._site.agencies.keys()
            if missing:
                outcomes[i] = PermanentError(f"agency {', '.join(sorted(missing))} is no longer "
                                             "in the site configuration")
            elif b["delivery_id"] not in index:  # a repeat in the batch is handled alone
                index[b["delivery_id"]] = i
        decided: dict[str, _Outcome] = {}

        def decide(did: str) -> tuple[list[SQLModel], str | None]:
            decided[did] = self._decide(jobs[index[did]])
            return decided[did].records, decided[did].final_status

        states = self._store.claim_batch(list(index), self._lease, decide)
        to_push: list[tuple[int, str]] = []
        for did, i in index.items():
            try:
                if not self._claimed(states[did]):
                    outcomes[i] = []
                elif decided[did].final_status is None:
                    to_push.append((i, did))
                else:
                    self._log(did, jobs[i], decided[did])
                    outcomes[i] = []
            except HubError as exc:
                outcomes[i] = exc
        delivered: list[str] = []
        failed: list[tuple[str, str, str]] = []
        events = []
        for (i, did), result in zip(to_push, self._push_all(jobs, to_push, decided), strict=True):
            if isinstance(result, (TransientError, PermanentError)):
                parked = jobs[i].final_attempt or isinstance(result, PermanentError)
                failed.append((did, "parked" if parked else "pending", str(result)))
                events.append(self._failure(jobs[i], did, result, parked))
                outcomes[i] = result
            else:
                delivered.append(did)
                self._log(did, jobs[i], decided[did])
                outcomes[i] = []
        self._store.finish_batch(delivered, failed, events)
        return outcomes

    def _push_all(self, jobs: list[Job], to_push: list[tuple[int, str]],
                  decided: dict[str, _Outcome]) -> list[int | HubError]:
        """Every push of a batch, concurrently; at most `concurrency` at once per agency."""
        if not to_push:
            return []

        def push(i: int, did: str) -> int | HubError:
            b = jobs[i].body
            agency = self._site.agencies[b["recipient"]]
            with self._gate(b["recipient"], agency.delivery.concurrency):
                try:
                    return self._pusher.push(str(agency.delivery.push), decided[did].rendered,  # type: ignore[arg-type]
                                             did, b["message_id"])
                except (TransientError, PermanentError) as exc:
                    return exc

        if len(to_push) == 1:
            return [push(*to_push[0])]
        return list(self._pool().map(lambda pair: push(*pair), to_push))

    def _gate(self, agency: str, limit: int) -> threading.Semaphore:
        with self._gates_lock:
            if agency not in self._gates:
                self._gates[agency] = threading.BoundedSemaphore(limit)
            return self._gates[agency]

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=PUSH_THREADS,
                                                thread_name_prefix="push")
        return self._executor

    @staticmethod
    def _log(did: str, job: Job, outcome: _Outcome) -> None:
        with structlog.contextvars.bound_contextvars(delivery_id=did,
                                                     recipient=job.body["recipient"]):
            log.info(outcome.event, fields=outcome.fields, withheld=outcome.withheld)

    def __call__(self, job: Job) -> list[Next]:
        b = job.body
        did = b["delivery_id"]
        missing_agencies = {b["sender"], b["recipient"]} - self._site.agencies.keys()
        if missing_agencies:
            raise PermanentError(f"agency {', '.join(sorted(missing_agencies))} is no longer in "
                                 "the site configuration")
        recipient = self._site.agencies[b["recipient"]]
        decided: list[_Outcome] = []

        def decide() -> tuple[list[SQLModel], str | None]:
            decided.append(self._decide(job))
            return decided[0].records, decided[0].final_status

        with structlog.contextvars.bound_contextvars(delivery_id=did, recipient=b["recipient"]):
            if not self._claimed(self._store.claim(did, self._lease, decide)):
                return []
            outcome = decided[0]
            if outcome.final_status is None:
                self._push(job, str(recipient.delivery.push), outcome.rendered, did,
                           b["message_id"])
            log.info(outcome.event, fields=outcome.fields, withheld=outcome.withheld)
            return []

    def _decide(self, job: Job) -> _Outcome:
        """Gate every field now, and build what is written and sent. Runs under the claim."""
        b = job.body
        did, form = b["delivery_id"], MessageType(b["form"])
        sender, recipient = self._site.agencies[b["sender"]], self._site.agencies[b["recipient"]]
        now = utcnow()
        ctx = DisclosureContext(
            site=self._site.site, participant_id=b.get("participant_id"),
            discloser=_party(b["sender"], sender), recipient=_party(b["recipient"], recipient),
            purpose=b["purpose"], message_type=form.value, at=now, case_ref=b["case_ref"],
        )
        fields = self._catalogue.flatten(form, b["body"])
        decisions = self._policy.decide(ctx, fields)
        missing = sorted(
            f.path for f, d in zip(fields, decisions, strict=True)
            if not d.permit and f.pattern in self._catalogue.essential[form]
        )
        withheld_reason = (
            f"delivery withheld: essential field(s) denied ({', '.join(missing)})" if missing
            else None
        )
        entries: list[SQLModel] = list(entries_for(
            ctx, fields, decisions, message_id=b["message_id"], delivery_id=did,
            attempt=job.attempt + 1, whole_delivery_withheld=withheld_reason,
            mapping_version=self._catalogue.version, hasher=self._hasher,
            notice=SHORT_NOTICE if sender.part2_program else None,
        ))
        denied_paths = tuple(f.path for f, d in zip(fields, decisions, strict=True) if not d.permit)
        if withheld_reason:
            return _Outcome(entries, "withheld", None, "withheld", len(fields), len(denied_paths))
        meta = DeliveryMeta(
            delivery_id=did, message_id=b["message_id"], case_ref=b["case_ref"],
            participant_ref=b.get("participant_id"), site=self._site.site,
            sender=b["sender"], sender_name=sender.name, recipient=b["recipient"],
            purpose=b["purpose"], sent_at=now.isoformat(),
            # Only a Part 2 program learns which fields it did not get (it is bound by Part 2
            # and must know its record is incomplete); to anyone else, and above all to police
            # and the DA, a list of withheld fields would itself say something about treatment.
            withheld_fields=denied_paths if recipient.part2_program else (),
            part2=sender.part2_program,
            consents=tuple(sorted({(d.consent_ref, d.scope) for d in decisions
                                   if d.permit and d.consent_ref})),
            refrain=not recipient.tpo_covered_entity,
            justice_recipient=recipient.kind.value in ("police", "prosecutor"),
            told_withheld=recipient.part2_program,
        )
        rendered = self._render(form, keep_only(b["body"], fields, decisions), recipient, meta)
        if recipient.delivery.inbox:
            item = self._inbox.item(self._site.site, b["recipient"], did, b["message_id"],
                                    orjson.dumps(rendered.document))
            return _Outcome([*entries, item], "delivered", rendered, "kept in inbox",
                            len(fields), len(denied_paths))
        return _Outcome(entries, None, rendered, "pushed", len(fields), len(denied_paths))

    @staticmethod
    def _claimed(outcome: str) -> bool:
        """True if this worker holds the delivery; False if an earlier run already settled it."""
        if outcome == "busy":
            raise Busy("another worker holds this delivery")
        if outcome == "missing":
            raise PermanentError("delivery row missing; the route step did not record it")
        if outcome != "claimed":
            log.info("already settled", status=outcome)
        return outcome == "claimed"

    def _render(self, form: MessageType, body: dict[str, Any], recipient: Agency,
                meta: DeliveryMeta) -> Rendered:
        render = self._renderers.get(recipient.format)
        if render is None:
            raise PermanentError(f"no renderer for the format {recipient.format}")
        return render(form.value, body, meta)

    def _failure(self, job: Job, did: str, exc: TransientError | PermanentError,
                 parked: bool) -> LedgerEntry:
        # What became of the bytes is the subject: the accounting lists every attempt that
        # may have reached the partner, whatever it answered. Unknown counts as sent.
        reached = exc.reached or Reached.NO_ANSWER
        return ledger_events.entry(
            site=self._site.site, kind=ledger_events.ATTEMPT_FAILED, actor="hub",
            subject=reached.value, reason=f"{exc}; {'parked' if parked else 'will retry'}",
            participant_id=job.body.get("participant_id"), message_id=job.body["message_id"],
            delivery_id=did, attempt=job.attempt + 1, recipient=job.body["recipient"])

    def _push(self, job: Job, url: str, rendered: Rendered, did: str, message_id: str) -> None:
        try:
            status = self._pusher.push(url, rendered, did, message_id)
        except (TransientError, PermanentError) as exc:
            parked = job.final_attempt or isinstance(exc, PermanentError)
            self._store.finish_batch([], [(did, "parked" if parked else "pending", str(exc))],
                                     [self._failure(job, did, exc, parked)])
            raise
        self._store.finish(did, "delivered")
        log.debug("recipient accepted", http_status=status)
