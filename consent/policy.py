"""The delivery step's disclosure policy: the registry's consents, decided by the engine."""

from __future__ import annotations

from consent.decisions import Decision, DisclosureContext
from consent.engine import decide
from consent.registry import Registry
from hub.classification import FieldValue


class ConsentPolicy:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def decide(self, ctx: DisclosureContext, fields: list[FieldValue]) -> list[Decision]:
        # Consents are read now, at the moment of disclosure: a revocation committed a moment
        # ago stops this delivery, queued, retried or replayed alike.
        needs_consent = ctx.discloser.part2_program and ctx.participant_id is not None
        consents = self._registry.consents_for(ctx.participant_id) if needs_consent else []  # type: ignore[arg-type]
        return decide(consents, ctx, fields)
