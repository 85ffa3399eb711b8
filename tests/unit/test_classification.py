"""hub.classification: the mapping file, its checks, and flattening bodies into classed leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import PROJECT_ROOT
from hub.classification import DataClass, FieldValue, load_catalogue, model_leaf_paths
from hub.errors import ConfigError
from hub.messages import MODELS, DiversionNotice, MessageType

CANONICAL = PROJECT_ROOT / "mappings" / "canonical.yaml"

ESSENTIAL = {
    MessageType.DIVERSION_NOTICE: ["pathway", "referred_at"],
    MessageType.CHARGE_HOLD: ["case_ref", "status"],
    MessageType.REFERRAL: ["case_ref", "pathway"],
    MessageType.REFERRAL_STATUS: ["case_ref", "status"],
}


def valid_lines() -> list[str]:
    """A complete mapping, built from the models (every leaf declared once)."""
    lines = ["version: test-v1", "messages:"]
    for message_type, model in MODELS.items():
        lines.append(f"  {message_type.value}:")
        lines += [f"    {path}: identity" for path in sorted(model_leaf_paths(model))]
    lines.append("essential:")
    lines += [f"  {t.value}: [{', '.join(paths)}]" for t, paths in ESSENTIAL.items()]
    return lines


def write(tmp_path: Path, lines: list[str]) -> Path:
    file = tmp_path / "mapping.yaml"
    file.write_text("\n".join(lines) + "\n")
    return file


def config_error(file: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_catalogue(file)
    return str(info.value)


# --- the real mapping file ---------------------------------------------------------------


def test_real_mapping_loads_with_its_version() -> None:
    """mappings/canonical.yaml loads and carries its declared version."""
    assert load_catalogue(CANONICAL).version == "canonical-v1"


@pytest.mark.parametrize("message_type", list(MessageType))
def test_real_mapping_covers_every_model_leaf(message_type: MessageType) -> None:
    """The real mapping declares exactly the leaves of each canonical model, no more, no less."""
    catalogue = load_catalogue(CANONICAL)
    assert set(catalogue.classes[message_type]) == model_leaf_paths(MODELS[message_type])


def test_real_mapping_keeps_clinical_fields_in_clinical_classes() -> None:
    """Provider detail is classed treatment/clinical/counseling-notes in the real mapping."""
    status = load_catalogue(CANONICAL).classes[MessageType.REFERRAL_STATUS]
    assert status["plan_summary"] == DataClass.TREATMENT
    assert status["diagnoses[]"] == DataClass.CLINICAL
    assert status["counseling_note"] == DataClass.COUNSELING_NOTES


def test_real_mapping_essential_fields() -> None:
    """The real mapping names the essential fields of a charge hold."""
    essential = load_catalogue(CANONICAL).essential
    assert essential[MessageType.CHARGE_HOLD] == frozenset({"case_ref", "status", "decided_at"})


def test_generated_valid_mapping_loads(tmp_path: Path) -> None:
    """The mapping the error tests start from is itself valid (so each error is the edit's)."""
    catalogue = load_catalogue(write(tmp_path, valid_lines()))
    assert catalogue.version == "test-v1"
    assert catalogue.essential[MessageType.CHARGE_HOLD] == frozenset({"case_ref", "status"})


# --- model_leaf_paths --------------------------------------------------------------------


def test_model_leaf_paths_mark_lists_and_nest_models() -> None:
    """Leaf paths go through nested models, mark list items with `[]`, never name containers."""
    paths = model_leaf_paths(DiversionNotice)
    assert {"pathway", "person.date_of_birth", "contact.phone", "incident.charges[].statute",
            "incident.charges[].description"} <= paths
    assert not {"person", "contact", "incident", "incident.charges", "incident.charges[]"} & paths


def test_model_leaf_paths_list_of_scalars() -> None:
    """A list of plain values is one leaf path ending in `[]`."""
    assert "conditions[]" in model_leaf_paths(MODELS[MessageType.CHARGE_HOLD])


# --- flatten -----------------------------------------------------------------------------


def notice_body() -> dict[str, object]:
    return {
        "pathway": "arrest-diversion",
        "referred_at": "2024-05-01T10:00:00Z",
        "person": {"given_name": "Jane", "family_name": "Doe", "date_of_birth": "1980-02-03"},
        "incident": {
            "report_number": "R-1",
            "occurred_at": "2024-05-01T09:00:00Z",
            "officer": "Ofc. Smith",
            "charges": [
                {"statute": "30-31-23", "description": "possession"},
                {"statute": "30-31-25.1", "description": "paraphernalia"},
            ],
        },
    }


def test_flatten_gives_concrete_list_paths_with_class() -> None:
    """The second charge's statute flattens to incident.charges[1].statute, classed justice."""
    fields = load_catalogue(CANONICAL).flatten(MessageType.DIVERSION_NOTICE, notice_body())
    by_path = {f.path: f for f in fields}
    assert by_path["incident.charges[1].statute"] == FieldValue(
        "incident.charges[1].statute", "incident.charges[].statute", DataClass.JUSTICE, "30-31-25.1"
    )
    assert by_path["person.date_of_birth"].data_class == DataClass.IDENTITY
    assert by_path["pathway"].data_class == DataClass.REFERRAL


def test_flatten_lists_every_present_leaf_once() -> None:
    """Each present leaf is listed once: 2 top, 3 person, 3 incident, 4 charge leaves."""
    fields = load_catalogue(CANONICAL).flatten(MessageType.DIVERSION_NOTICE, notice_body())
    paths = [f.path for f in fields]
    assert len(paths) == len(set(paths)) == 12


def test_flatten_skips_none_values() -> None:
    """Keys whose value is None are not leaves."""
    body = notice_body()
    body["referral_reason"] = None
    fields = load_catalogue(CANONICAL).flatten(MessageType.DIVERSION_NOTICE, body)
    assert "referral_reason" not in {f.path for f in fields}


def test_flatten_classes_scalar_list_items() -> None:
    """Items of a list of scalars get indexed paths and the list's class."""
    body = {"case_ref": "c", "status": "engaged", "occurred_at": "2024-05-01T10:00:00Z",
            "diagnoses": ["F11.20", "F10.10"], "counseling_note": "talked"}
    fields = load_catalogue(CANONICAL).flatten(MessageType.REFERRAL_STATUS, body)
    by_path = {f.path: f for f in fields}
    assert by_path["diagnoses[1]"].value == "F10.10"
    assert by_path["diagnoses[1]"].data_class == DataClass.CLINICAL
    assert by_path["counseling_note"].data_class == DataClass.COUNSELING_NOTES


# --- broken mapping files ----------------------------------------------------------------


def test_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    """A model leaf absent from the mapping is an error at its message type's line."""
    lines = valid_lines()
    lines.remove("    counseling_note: identity")
    file = write(tmp_path, lines)
    message = config_error(file)
    line = lines.index("  referral-status:") + 1
    assert f"{file}:{line}:" in message
    assert "referral-status.counseling_note has no data class" in message


def test_unknown_field_names_file_line_and_field(tmp_path: Path) -> None:
    """A path no model has is an error at that path's line."""
    lines = valid_lines()
    at = lines.index("  diversion-notice:") + 1
    lines.insert(at, "    person.nickname: identity")
    file = write(tmp_path, lines)
    message = config_error(file)
    assert f"{file}:{at + 1}:" in message
    assert "'person.nickname'" in message


def test_unknown_data_class_names_file_line_and_value(tmp_path: Path) -> None:
    """A data class outside the vocabulary is an error at that field's line."""
    lines = valid_lines()
    i = lines.index("    plan_summary: identity")
    lines[i] = "    plan_summary: therapy"
    file = write(tmp_path, lines)
    message = config_error(file)
    assert f"{file}:{i + 1}:" in message
    assert "plan_summary" in message and "'therapy'" in message


def test_field_declared_twice_names_second_line(tmp_path: Path) -> None:
    """A path declared twice for one message is an error at the repeat's line."""
    lines = valid_lines()
    at = lines.index("  charge-hold:") + 1
    lines.insert(at, "    case_ref: identity")
    file = write(tmp_path, lines)
    message = config_error(file)
    assert lines[at + 1] == "    case_ref: identity"  # the original declaration follows
    assert f"{file}:{at + 2}:" in message
    assert "charge-hold.case_ref declared twice" in message


def test_unknown_essential_field_names_file_line_and_field(tmp_path: Path) -> None:
    """An essential path the message does not declare is an error at its line."""
    lines = valid_lines()
    i = lines.index("  charge-hold: [case_ref, status]")
    lines[i] = "  charge-hold: [case_ref, status, verdict]"
    file = write(tmp_path, lines)
    message = config_error(file)
    assert f"{file}:{i + 1}:" in message
    assert "'verdict'" in message


def test_unknown_message_type_is_refused(tmp_path: Path) -> None:
    """A message type the hub does not know is an error at its line."""
    lines = valid_lines()
    at = lines.index("messages:") + 1
    lines[at:at] = ["  parole-update:", "    status: justice"]
    file = write(tmp_path, lines)
    message = config_error(file)
    assert f"{file}:{at + 1}:" in message
    assert "'parole-update'" in message


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    """Several mistakes in one file are all reported in one error."""
    lines = valid_lines()
    lines.remove("    counseling_note: identity")
    lines[lines.index("    plan_summary: identity")] = "    plan_summary: therapy"
    message = config_error(write(tmp_path, lines))
    assert "counseling_note has no data class" in message
    assert "'therapy'" in message


def test_unreadable_mapping_names_file(tmp_path: Path) -> None:
    """A missing mapping file is a ConfigError naming the file."""
    file = tmp_path / "absent.yaml"
    assert str(file) in config_error(file)
