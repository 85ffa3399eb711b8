"""hub.intake.parse and json_path: validating bodies at the edge, every problem with its path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from hub.errors import BadInput, json_path
from hub.intake import parse
from hub.messages import DiversionNotice, MessageType, Pathway


def valid_notice() -> dict[str, Any]:
    return {
        "pathway": "arrest-diversion",
        "referred_at": "2024-05-01T10:00:00Z",
        "person": {"given_name": "Jane", "family_name": "Doe", "date_of_birth": "1980-02-03"},
        "incident": {
            "report_number": "R-1",
            "occurred_at": "2024-05-01T09:00:00Z",
            "officer": "Ofc. Smith",
            "charges": [{"statute": "30-31-23", "description": "possession"}],
        },
    }


def bad_input(raw: bytes, message_type: MessageType = MessageType.DIVERSION_NOTICE) -> BadInput:
    with pytest.raises(BadInput) as info:
        parse(message_type, raw)
    return info.value


def test_json_path_of_nested_list_location() -> None:
    """Field names become `.name` and list indexes `[i]`, from `$`."""
    assert json_path(("incident", "charges", 0, "statute")) == "$.incident.charges[0].statute"


def test_json_path_of_empty_location_is_root() -> None:
    """The empty location is the document root `$`."""
    assert json_path(()) == "$"


def test_valid_body_parses_to_model() -> None:
    """A valid diversion notice parses into the canonical model."""
    notice = parse(MessageType.DIVERSION_NOTICE, orjson.dumps(valid_notice()))
    assert isinstance(notice, DiversionNotice)
    assert notice.pathway == Pathway.ARREST_DIVERSION
    assert notice.incident is not None and notice.incident.charges[0].statute == "30-31-23"


def test_every_problem_is_listed_with_its_json_path() -> None:
    """A body with several mistakes gets one BadInput naming each mistake's JSON path."""
    body = valid_notice()
    body["person"]["date_of_birth"] = "not-a-date"
    del body["incident"]["charges"][0]["description"]
    body["pathway"] = "arrest"
    error = bad_input(orjson.dumps(body))
    assert {p.path for p in error.problems} == {
        "$.person.date_of_birth", "$.incident.charges[0].description", "$.pathway",
    }
    assert "3 problem" in error.title
    assert all(p.message for p in error.problems)


def test_missing_required_top_level_field_is_located() -> None:
    """A missing required field is reported at its own path."""
    body = valid_notice()
    del body["person"]
    assert [p.path for p in bad_input(orjson.dumps(body)).problems] == ["$.person"]


def test_invalid_json_is_one_problem_at_root() -> None:
    """A body that is not JSON gives exactly one problem, at `$`."""
    error = bad_input(b'{"pathway": ')
    assert [p.path for p in error.problems] == ["$"]
    assert "JSON" in error.title


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"null", b"42"])
def test_non_object_body_is_one_problem_at_root(raw: bytes) -> None:
    """A JSON body that is not an object gives exactly one problem, at `$`."""
    error = bad_input(raw)
    assert [p.path for p in error.problems] == ["$"]
    assert "object" in error.title


def test_unknown_top_level_field_is_refused() -> None:
    """A field the model does not declare is refused at its path (extra=forbid)."""
    body = valid_notice() | {"nickname": "JD"}
    problems = bad_input(orjson.dumps(body)).problems
    assert [p.path for p in problems] == ["$.nickname"]
    assert "not permitted" in problems[0].message.lower()


def test_unknown_nested_field_is_refused() -> None:
    """An undeclared field inside a nested object is refused at its nested path."""
    body = valid_notice()
    body["incident"]["charges"][0]["severity"] = "high"
    body["person"]["ssn"] = "000-00-0000"
    paths = {p.path for p in bad_input(orjson.dumps(body)).problems}
    assert paths == {"$.incident.charges[0].severity", "$.person.ssn"}


def test_problems_appear_in_error_text() -> None:
    """The BadInput's text lists each problem's path, so logs and problem details name them."""
    body = valid_notice()
    body["person"]["date_of_birth"] = "soon"
    assert "$.person.date_of_birth" in str(bad_input(orjson.dumps(body)))


def test_other_message_types_are_validated_against_their_model() -> None:
    """A referral status with an unknown status code is refused at `$.status`."""
    body = {"case_ref": "c", "status": "vanished", "occurred_at": "2024-05-01T10:00:00Z"}
    raw = orjson.dumps(body)
    paths = [p.path for p in bad_input(raw, MessageType.REFERRAL_STATUS).problems]
    assert paths == ["$.status"]


def test_times_without_offset_are_refused() -> None:
    """A time without a UTC offset is ambiguous across agencies, so it is refused with its path."""
    body = valid_notice()
    body["referred_at"] = "2026-11-20T10:00:00"
    error = bad_input(orjson.dumps(body))
    assert [p.path for p in error.problems] == ["$.referred_at"]
    assert "timezone" in error.problems[0].message
