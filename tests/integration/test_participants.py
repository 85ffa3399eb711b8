"""Participant matching at the ingest step: one person, one participant id, however spelled."""

from __future__ import annotations

from typing import Any

from hub.db.tables import Message
from tests.harness import RunningHub, hold, notice, status, wait_for


def _person(given: str, family: str, dob: str, state_id: str | None = None) -> dict[str, Any]:
    person = {"given_name": given, "family_name": family, "date_of_birth": dob}
    if state_id is not None:
        person["state_id"] = state_id
    return person


def _stored(running: RunningHub, body: dict[str, Any], agency: str = "sfpd",
            kind: str = "diversion-notices", deliveries: int = 2) -> Message:
    """Submit, wait until every delivery settled, and return the stored message."""
    message_id = running.submit(agency, kind, body)
    wait_for(f"{kind} {message_id} settled", lambda: running.settled(message_id, deliveries))
    message = running.hub.store.get_message(message_id)
    assert message is not None
    assert message.participant_id, f"{kind} {message_id} has no participant"
    return message


def _participant_of(running: RunningHub, body: dict[str, Any]) -> str:
    """The participant id ingest gave a police diversion notice."""
    return str(_stored(running, body).participant_id)


def test_same_state_id_with_other_spelling_is_same_participant(running: RunningHub) -> None:
    """Two notices with one state id but differently spelled names map to one participant."""
    first = _participant_of(running, notice(person=_person("Avery", "Testperson", "1988-03-14",
                                                           "NM-T-5550")))
    second = _participant_of(running, notice(person=_person("Avrey", "Tesperson", "1988-03-14",
                                                            "nm-t-5550")))
    assert first == second


def test_name_case_accents_spaces_hyphens_do_not_split_a_person(running: RunningHub) -> None:
    """Without a state id, same DOB and a name differing only in case/accents/spacing match."""
    first = _participant_of(running, notice(person=_person("José", "Núñez-Ortiz", "1990-07-02")))
    second = _participant_of(running, notice(person=_person("jose", "nunez ortiz", "1990-07-02")))
    assert first == second


def test_different_date_of_birth_is_a_different_participant(running: RunningHub) -> None:
    """The same name with another date of birth (no state id) is another person."""
    first = _participant_of(running, notice(person=_person("Jordan", "Lee", "1985-01-01")))
    second = _participant_of(running, notice(person=_person("Jordan", "Lee", "1985-01-02")))
    assert first != second


def test_hold_and_status_take_the_participant_of_their_case(running: RunningHub) -> None:
    """A hold and a status update are tied to the participant of the notice they reference."""
    other = _participant_of(running, notice(person=_person("Sam", "Other", "1970-05-05")))
    case = running.submit("sfpd", "diversion-notices",
                          notice(person=_person("Riley", "Casey", "1992-09-09", "NM-R-1")))
    wait_for("notice delivered", lambda: running.settled(case, 2))
    case_message = running.hub.store.get_message(case)
    assert case_message is not None and case_message.participant_id
    participant = case_message.participant_id
    assert participant != other

    held = _stored(running, hold(case), agency="da", kind="charge-holds")
    updated = _stored(running, status(case), agency="provider", kind="referral-status")
    assert (held.case_ref, held.participant_id) == (case, participant)
    assert (updated.case_ref, updated.participant_id) == (case, participant)


def test_different_state_ids_are_different_people_even_with_same_name_and_birth_date(
    running: RunningHub,
) -> None:
    """Two state ids never merge; a later notice without a state id joins the single match."""
    first = running.submit("sfpd", "diversion-notices",
                           notice(person={"given_name": "Sam", "family_name": "Twin",
                                          "date_of_birth": "1990-02-02", "state_id": "NM-A"}))
    second = running.submit("sfpd", "diversion-notices",
                            notice(person={"given_name": "Sam", "family_name": "Twin",
                                           "date_of_birth": "1990-02-02", "state_id": "NM-B"}))
    for m in (first, second):
        wait_for("settled", lambda m=m: running.settled(m, 2))
    a, b = (running.hub.store.get_message(m) for m in (first, second))
    assert a and b and a.participant_id != b.participant_id
    third = running.submit("sfpd", "diversion-notices",
                           notice(person={"given_name": "Sam", "family_name": "Twin",
                                          "date_of_birth": "1990-02-02"}))
    wait_for("settled", lambda: running.settled(third, 2))
    c = running.hub.store.get_message(third)
    assert c and c.participant_id not in (None, a.participant_id, b.participant_id), (
        "ambiguous between two people: a new participant, never a guess")
