"""consent.engine: properties over random consent sets, checked by an independent reading of R1-R9.

The predicate below is written from PART2.md, not from the engine: a permit for a Part 2
record is sound only if some consent on file, the newest version of its id, covers this
patient, this site, this instant, this discloser, this recipient, this purpose and this class.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import combinations, product

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.decisions import DisclosureContext, Party
from consent.engine import decide_field
from consent.model import Consent, ConsentKind
from hub.classification import DataClass

SETTINGS = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

SITE = "santa-fe"
OTHER_SITE = "albuquerque"
AGENCIES = {  # deploy/sites/santa-fe.yaml
    "sfpd": Party("sfpd", "police", part2_program=False, tpo_covered_entity=False),
    "da": Party("da", "prosecutor", part2_program=False, tpo_covered_entity=False),
    "provider": Party("provider", "treatment", part2_program=True, tpo_covered_entity=True),
    "outreach": Party("outreach", "community", part2_program=False, tpo_covered_entity=False),
}
PROVIDER = AGENCIES["provider"]
JUSTICE_AGENCIES = ["sfpd", "da"]
PARTICIPANTS = ["P-1", "P-2", "P-3"]
PURPOSES = ["TREAT", "HOPERAT", "LEAD-CJ-MONITORING", "LEAD-CHARGE-DECISION"]
IDS = ["c-1", "c-2", "c-3", "c-4"]
BASE = datetime(2025, 1, 1, tzinfo=UTC)
HOURS = 24 * 60  # instants are whole hours in a 60-day window, so boundaries get hit

# The rules, restated here on purpose (not imported from the engine).
TPO_PURPOSES = {"TREAT", "HPAYMT", "HOPERAT"}
MONITORING = {DataClass.REFERRAL, DataClass.ENGAGEMENT}
CLINICAL_DETAIL = {DataClass.TREATMENT, DataClass.CLINICAL, DataClass.COUNSELING_NOTES}
JUSTICE_KINDS = {"police", "prosecutor"}


def hour(n: int) -> datetime:
    return BASE + timedelta(hours=n)


def subsets(items: list, min_size: int = 0) -> list[frozenset]:  # type: ignore[type-arg]
    """Every subset of `items` (one cheap draw each instead of drawing members one by one)."""
    return [frozenset(c) for n in range(min_size, len(items) + 1)
            for c in combinations(items, n)]


instants = st.integers(0, HOURS).map(hour)
# Whole choices precomputed, so each attribute of a consent costs one draw.
HEADS = list(product(IDS, [1, 2, 3], list(ConsentKind), [SITE, SITE, SITE, OTHER_SITE],
                     PARTICIPANTS))
AGENCY_SETS = subsets(sorted(AGENCIES))
DISCLOSER_SETS = subsets(sorted(AGENCIES), 1) + [frozenset({"provider"})] * 8
PURPOSE_SETS = subsets(PURPOSES, 1)
CLASS_SETS = subsets(list(DataClass))
DENIED_SETS = [frozenset()] * len(CLASS_SETS) + CLASS_SETS
NEVER = -1  # an optional instant that is absent


def optional_hour(n: int) -> datetime | None:
    return None if n == NEVER else hour(n)


# Strategies built once: building them inside a draw costs more than the draw.
heads = st.sampled_from(HEADS)
starts = st.integers(0, HOURS)
spans = st.sampled_from([NEVER, 12, 24 * 30, 24 * 90])  # hours until valid_until
soon = st.sampled_from([NEVER, NEVER, NEVER]) | st.integers(0, 72)  # hours after the start
discloser_sets = st.sampled_from(DISCLOSER_SETS)
recipient_sets = st.sampled_from(AGENCY_SETS)
purpose_sets = st.sampled_from(PURPOSE_SETS)
class_sets = st.sampled_from(CLASS_SETS)
denied_sets = st.sampled_from(DENIED_SETS)


def _after(start: int, offset: int) -> int:
    return NEVER if offset == NEVER else start + offset


@st.composite
def consents(draw: st.DrawFn, revoked: bool | None = None) -> Consent:
    """One consent version of any kind; `revoked` True/False forces revoked_at set/unset.

    Ends by event and revocations, when present, fall within three days of the start.
    """
    cid, version, kind, site, participant = draw(heads)
    start = draw(starts)
    until = _after(start, draw(spans))
    ended = _after(start, draw(soon))
    if revoked is None:
        revoked_n = _after(start, draw(soon))
    else:
        revoked_n = draw(starts) if revoked else NEVER
    classes = draw(class_sets)
    return Consent(
        id=cid, version=version, kind=kind, site=site, participant_id=participant,
        disclosers=draw(discloser_sets), recipients=draw(recipient_sets),
        purposes=draw(purpose_sets), classes=classes, denied_classes=draw(denied_sets) & classes,
        valid_from=hour(start), valid_until=optional_hour(until), signed_at=hour(start),
        expiry_event="final-disposition" if until == NEVER or ended != NEVER else None,
        ended_at=optional_hour(ended), revoked_at=optional_hour(revoked_n),
    )


def _registry_shaped(found: list[Consent]) -> list[Consent]:
    """Versions of one id keep its patient and site, as the registry enforces on update."""
    first: dict[str, Consent] = {}
    out = []
    for c in found:
        head = first.setdefault(c.id, c)
        out.append(replace(c, participant_id=head.participant_id, site=head.site))
    return out


def consent_sets(min_size: int = 0) -> st.SearchStrategy[list[Consent]]:
    return (st.lists(consents(), min_size=min_size, max_size=5,
                     unique_by=lambda c: (c.id, c.version))
            .map(_registry_shaped))


some_consents = consent_sets(min_size=1)
picks = st.integers(0, 2**16)  # an index into a list known only at draw time
aimed = st.sampled_from([True] * 4 + [False])  # four draws in five aim at a consent
stray = st.sampled_from([True] + [False] * 9)  # one in ten strays to another patient/site
near = st.integers(-1, 36)  # hours after the aimed-at consent's start
ALL_AGENCIES, ALL_CLASSES = sorted(AGENCIES), list(DataClass)


def pick(draw: st.DrawFn, items: list):  # type: ignore[no-untyped-def,type-arg]
    return items[draw(picks) % len(items)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Consent], DisclosureContext, DataClass]:
    """Consents on file and a Part 2 disclosure (provider to a santa-fe agency) of one class.

    Most disclosures are aimed near one of the consents (its patient and site, mostly; a
    recipient, purpose and class it names; an instant around its start) so that permits,
    and the boundaries around them, are common; the rest are drawn blind.
    """
    found = draw(some_consents)
    if draw(aimed):
        c = pick(draw, found)
        participant, site = c.participant_id, c.site
        if draw(stray):  # now and then the same terms for another patient ...
            participant = pick(draw, [p for p in PARTICIPANTS if p != participant])
        if draw(stray):  # ... or at another site
            site = OTHER_SITE if site == SITE else SITE
        recipient = pick(draw, sorted(c.recipients) or ALL_AGENCIES)
        purpose = pick(draw, sorted(c.purposes))
        cls = pick(draw, sorted(c.classes - c.denied_classes) or ALL_CLASSES)
        at = c.valid_from + timedelta(hours=draw(near))
    else:
        participant = pick(draw, PARTICIPANTS)
        site = pick(draw, [SITE, SITE, OTHER_SITE])
        recipient = pick(draw, ALL_AGENCIES)
        purpose = pick(draw, PURPOSES)
        cls = pick(draw, ALL_CLASSES)
        at = draw(instants)
    ctx = DisclosureContext(site=site, participant_id=participant, discloser=PROVIDER,
                            recipient=AGENCIES[recipient], purpose=purpose,
                            message_type="referral-status", at=at)
    return found, ctx, cls


def covering(found: list[Consent], ctx: DisclosureContext, cls: DataClass) -> set[str]:
    """References of consents that, read from PART2.md R1-R9, authorise this disclosure."""
    newest: dict[str, int] = {}
    for c in found:
        newest[c.id] = max(newest.get(c.id, 0), c.version)
    at, recipient = ctx.at, ctx.recipient
    justice = recipient.kind in JUSTICE_KINDS
    refs = set()
    for c in found:
        if c.version != newest[c.id]:
            continue  # only the newest version speaks
        if c.participant_id != ctx.participant_id or c.site != ctx.site:
            continue  # R1: this patient's consent, at this site
        if not c.valid_from <= at:
            continue  # R3: not yet in force
        if any(end is not None and end <= at for end in (c.valid_until, c.ended_at, c.revoked_at)):
            continue  # R3: expired, ended by its event, or revoked
        if ctx.discloser.agency not in c.disclosers:
            continue  # R2: who may disclose
        if c.kind == ConsentKind.TPO:
            if not recipient.tpo_covered_entity or justice:
                continue  # R9 (and R5: TPO is not a route to the justice system)
            if c.recipients and recipient.agency not in c.recipients:
                continue  # R2: a TPO consent naming recipients names them all
            if ctx.purpose not in TPO_PURPOSES:
                continue  # 2.33(b): treatment, payment, operations only
        elif recipient.agency not in c.recipients:
            continue  # R2: recipients
        if c.kind == ConsentKind.CRIMINAL_JUSTICE and not justice:
            continue  # R5: a 2.35 consent speaks only to the justice system
        if ctx.purpose not in c.purposes:
            continue  # R2: purpose
        if cls not in c.classes or cls in c.denied_classes:
            continue  # R2: what may be disclosed
        if cls == DataClass.COUNSELING_NOTES and set(c.classes) != {cls}:
            continue  # R7: counselling notes need their own consent
        if justice and (cls in CLINICAL_DETAIL
                        or (c.kind != ConsentKind.COURT_ORDER and cls not in MONITORING)):
            continue  # R5/R6: only monitoring data reaches police and the DA
        refs.add(c.reference)
    return refs


@SETTINGS
@given(scenarios())
def test_every_permit_is_justified_by_a_covering_consent(
        scenario: tuple[list[Consent], DisclosureContext, DataClass]) -> None:
    """A permit for a Part 2 record names a consent the independent R1-R9 predicate accepts."""
    found, ctx, cls = scenario
    decision = decide_field(found, ctx, cls)
    if decision.permit:
        assert decision.consent_ref in covering(found, ctx, cls), decision


@SETTINGS
@given(scenarios())
def test_every_covered_disclosure_is_permitted(
        scenario: tuple[list[Consent], DisclosureContext, DataClass]) -> None:
    """When the independent predicate finds a covering consent, the engine permits."""
    found, ctx, cls = scenario
    if covering(found, ctx, cls):
        assert decide_field(found, ctx, cls).permit


@SETTINGS
@given(consent_sets(), st.sampled_from(sorted(AGENCIES)), st.sampled_from(JUSTICE_AGENCIES),
       st.sampled_from(sorted(CLINICAL_DETAIL)), st.sampled_from(PURPOSES),
       st.sampled_from(PARTICIPANTS), instants)
def test_justice_recipients_never_get_clinical_detail(
        found: list[Consent], discloser: str, recipient: str, cls: DataClass, purpose: str,
        participant: str, at: datetime) -> None:
    """Police and the DA never get treatment, clinical or counselling notes, whatever is on file."""
    ctx = DisclosureContext(site=SITE, participant_id=participant, discloser=AGENCIES[discloser],
                            recipient=AGENCIES[recipient], purpose=purpose,
                            message_type="referral-status", at=at)
    decision = decide_field(found, ctx, cls)
    assert not decision.permit
    assert decision.consent_ref is None


@SETTINGS
@given(consents(revoked=True), st.sampled_from(ALL_AGENCIES), st.sampled_from(PURPOSES),
       st.sampled_from(ALL_CLASSES), st.integers(0, HOURS), st.integers(0, 24 * 365))
def test_a_revoked_sole_consent_never_permits_again(
        consent: Consent, recipient: str, purpose: str, cls: DataClass, after: int,
        later: int) -> None:
    """Once the only consent is revoked at r <= t, the field is denied at t and at all later t."""
    assert consent.revoked_at is not None
    t = consent.revoked_at + timedelta(hours=after)
    # The revoked consent is the candidate: same patient and site, and (where it names any)
    # a recipient, purpose and class it names, so revocation is what stands in the way.
    ctx = DisclosureContext(
        site=consent.site, participant_id=consent.participant_id, discloser=PROVIDER,
        recipient=AGENCIES[min(consent.recipients, default=recipient)],
        purpose=min(consent.purposes, default=purpose), message_type="referral-status", at=t)
    cls = min(consent.classes, default=cls)
    assert not decide_field([consent], ctx, cls).permit
    ctx_later = replace(ctx, at=t + timedelta(hours=later, seconds=1))
    assert not decide_field([consent], ctx_later, cls).permit
    unrevoked = replace(consent, revoked_at=None)
    if covering([unrevoked], ctx, cls):  # the same consent, never revoked, would have covered
        assert decide_field([unrevoked], ctx, cls).permit


@SETTINGS
@given(scenarios(), st.integers(1, 24 * 365))
def test_denials_stay_denied_once_every_consent_has_started(
        scenario: tuple[list[Consent], DisclosureContext, DataClass], later: int) -> None:
    """With no consent starting later, a denial at t stays a denial at every later instant."""
    found, ctx, cls = scenario
    if any(c.valid_from > ctx.at for c in found) or decide_field(found, ctx, cls).permit:
        return
    ctx_later = replace(ctx, at=ctx.at + timedelta(hours=later))
    assert not decide_field(found, ctx_later, cls).permit


@SETTINGS
@given(scenarios(), st.integers(0, 4))
def test_decision_does_not_depend_on_consent_order(
        scenario: tuple[list[Consent], DisclosureContext, DataClass], turn: int) -> None:
    """Reordering the consents on file changes neither the decision, its reason nor its consent."""
    found, ctx, cls = scenario
    k = turn % max(len(found), 1)
    reordered = list(reversed(found[k:] + found[:k]))
    a, b = decide_field(found, ctx, cls), decide_field(reordered, ctx, cls)
    assert (a.permit, a.consent_ref, a.reason) == (b.permit, b.consent_ref, b.reason)
