"""hub.site: loading site files, their line-numbered errors, routing and endpoint overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import PROJECT_ROOT
from hub.errors import ConfigError
from hub.messages import MessageType
from hub.site import REFERRING_AGENCY, AgencyKind, load_site

SANTA_FE = PROJECT_ROOT / "deploy" / "sites" / "santa-fe.yaml"

VALID = [
    "site: test-site",
    "name: Test site",
    "agencies:",
    "  pd:",
    "    name: Police",
    "    kind: police",
    "    delivery:",
    "      inbox: true",
    "  da:",
    "    name: District Attorney",
    "    kind: prosecutor",
    "    delivery:",
    "      push: http://127.0.0.1:9/da",
    "routes:",
    "  - message: diversion-notice",
    "    deliver:",
    "      - to: da",
    "        as: diversion-notice",
    "        purpose: LEAD-CHARGE-DECISION",
]


def write(tmp_path: Path, lines: list[str]) -> Path:
    file = tmp_path / "site.yaml"
    file.write_text("\n".join(lines) + "\n")
    return file


def config_error(file: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_site(file)
    return str(info.value)


def targets(file: Path, message_type: MessageType, pathway: str | None) -> list[tuple[str, str]]:
    return [(t.to, t.form.value) for t in load_site(file).routes_for(message_type, pathway)]


# --- the shipped site ----------------------------------------------------------------------


def test_shipped_site_loads() -> None:
    """deploy/sites/santa-fe.yaml loads with its four agencies and the provider as FHIR, Part 2."""
    site = load_site(SANTA_FE)
    assert site.site == "santa-fe"
    assert set(site.agencies) == {"sfpd", "da", "provider", "provider-2", "outreach",
                                  "compliance"}
    provider = site.agencies["provider"]
    assert provider.kind == AgencyKind.TREATMENT
    assert provider.format == "fhir-r4" and provider.part2_program
    assert site.agencies["sfpd"].delivery.inbox
    assert str(site.agencies["da"].delivery.push) == "http://127.0.0.1:8701/lead/messages"


def test_arrest_diversion_goes_to_provider_and_da() -> None:
    """An arrest diversion is routed to the provider as a referral and to the DA as the notice."""
    assert targets(SANTA_FE, MessageType.DIVERSION_NOTICE, "arrest-diversion") == [
        ("provider", "referral"), ("da", "diversion-notice"),
    ]


def test_community_referral_goes_only_to_provider() -> None:
    """A community referral reaches the provider only, never the DA."""
    assert targets(SANTA_FE, MessageType.DIVERSION_NOTICE, "community-referral") == [
        ("provider", "referral"),
    ]


def test_route_without_pathway_condition_matches_any_message_of_its_type() -> None:
    """A charge hold (no `when`) goes back to the referring agency and to the provider."""
    assert targets(SANTA_FE, MessageType.CHARGE_HOLD, None) == [
        (REFERRING_AGENCY, "charge-hold"), ("provider", "charge-hold"),
    ]


def test_message_type_without_routes_goes_nowhere(tmp_path: Path) -> None:
    """routes_for gives nothing for a message type no route names."""
    assert targets(write(tmp_path, VALID), MessageType.REFERRAL_STATUS, None) == []


def test_minimal_valid_site_loads(tmp_path: Path) -> None:
    """The site the error tests start from is itself valid (so each error is the edit's)."""
    assert targets(write(tmp_path, VALID), MessageType.DIVERSION_NOTICE, "arrest-diversion") == [
        ("da", "diversion-notice"),
    ]


# --- broken site files ---------------------------------------------------------------------


def test_unknown_route_target_names_file_line_and_field(tmp_path: Path) -> None:
    """A route to an agency the site lacks is an error at the target's line, naming the field."""
    lines = list(VALID)
    i = lines.index("      - to: da")
    lines[i] = "      - to: sheriff"
    file = write(tmp_path, lines)
    message = config_error(file)
    assert "routes[0].deliver[0].to" in message and "'sheriff'" in message
    assert f"{file}:{i + 1}:" in message


def test_push_and_inbox_together_names_file_line_and_field(tmp_path: Path) -> None:
    """An agency with both push and inbox is an error at its delivery line."""
    lines = list(VALID)
    i = lines.index("      push: http://127.0.0.1:9/da")
    lines.insert(i + 1, "      inbox: true")
    file = write(tmp_path, lines)
    message = config_error(file)
    assert f"{file}:{i}: agencies.da.delivery:" in message
    assert "exactly one" in message


def test_neither_push_nor_inbox_is_refused(tmp_path: Path) -> None:
    """An agency whose delivery says inbox: false and has no push is refused."""
    lines = list(VALID)
    i = lines.index("      inbox: true")
    lines[i] = "      inbox: false"
    message = config_error(write(tmp_path, lines))
    assert "agencies.pd.delivery" in message and "exactly one" in message


def test_bad_url_names_file_line_and_field(tmp_path: Path) -> None:
    """A push value that is not an http(s) URL is an error at the push line."""
    lines = list(VALID)
    i = lines.index("      push: http://127.0.0.1:9/da")
    lines[i] = "      push: not a url"
    file = write(tmp_path, lines)
    message = config_error(file)
    assert f"{file}:{i + 1}: agencies.da.delivery.push:" in message


def test_unknown_key_names_file_line_and_field(tmp_path: Path) -> None:
    """A key the site schema does not know is refused at its line (extra=forbid)."""
    lines = list(VALID)
    at = lines.index("    kind: prosecutor") + 1
    lines.insert(at, "    colour: blue")
    file = write(tmp_path, lines)
    message = config_error(file)
    assert f"{file}:{at + 1}: agencies.da.colour:" in message


def test_unknown_agency_kind_names_field(tmp_path: Path) -> None:
    """An agency kind outside the vocabulary is refused at its line."""
    lines = list(VALID)
    i = lines.index("    kind: police")
    lines[i] = "    kind: sheriff"
    file = write(tmp_path, lines)
    assert f"{file}:{i + 1}: agencies.pd.kind:" in config_error(file)


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    """Two independent mistakes are both reported in one error."""
    lines = list(VALID)
    lines[lines.index("    kind: police")] = "    kind: sheriff"
    lines[lines.index("      push: http://127.0.0.1:9/da")] = "      push: not a url"
    message = config_error(write(tmp_path, lines))
    assert "agencies.pd.kind" in message and "agencies.da.delivery.push" in message


def test_invalid_yaml_names_file(tmp_path: Path) -> None:
    """A file that is not YAML is a ConfigError naming the file."""
    file = tmp_path / "site.yaml"
    file.write_text("site: [unclosed\n")
    assert str(file) in config_error(file)


# --- endpoint overrides --------------------------------------------------------------------


def test_endpoint_override_replaces_push_url() -> None:
    """endpoint_overrides points an agency's push at another URL."""
    site = load_site(SANTA_FE, {"da": "http://127.0.0.1:9999/other"})
    assert str(site.agencies["da"].delivery.push) == "http://127.0.0.1:9999/other"
    assert str(site.agencies["provider"].delivery.push) == "http://127.0.0.1:8702/fhir"


def test_endpoint_override_turns_inbox_agency_into_push() -> None:
    """Overriding an inbox agency makes it a push agency (inbox off)."""
    delivery = load_site(SANTA_FE, {"sfpd": "http://127.0.0.1:9999/pd"}).agencies["sfpd"].delivery
    assert str(delivery.push) == "http://127.0.0.1:9999/pd"
    assert not delivery.inbox


def test_endpoint_override_for_unknown_agency_is_ignored() -> None:
    """An override naming no agency of the site adds nothing."""
    site = load_site(SANTA_FE, {"nobody": "http://127.0.0.1:9999/x"})
    assert "nobody" not in site.agencies
