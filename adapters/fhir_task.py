"""FHIR R4 `Task` updates from a provider's EHR, mapped to canonical referral status.

Accepts JSON or XML, validates with the fhir.resources R4B models, and reports problems
with FHIRPath-like locations so they can go back as an `OperationOutcome`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from fhir.resources.R4B.task import Task
from pydantic import ValidationError

from hub.errors import BadInput, ConfigError, Problem

FHIR_XML = ("application/fhir+xml", "application/xml", "text/xml")


@dataclass(frozen=True)
class TaskMapping:
    version: str
    case_system: str
    business_system: str
    business_status: frozenset[str]
    task_status: dict[str, str]


def load_task_mapping(file: str | Path) -> TaskMapping:
    try:
        data = yaml.safe_load(Path(file).read_text())
        return TaskMapping(
            version=data["version"], case_system=data["case_identifier_system"],
            business_system=data["business_status_system"],
            business_status=frozenset(data["business_status"]),
            task_status=dict(data["task_status"]),
        )
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise ConfigError(f"{file}: invalid FHIR Task mapping ({type(exc).__name__}: {exc})") from None


def parse_task(raw: bytes, content_type: str) -> dict[str, Any]:
    """A validated R4 Task as JSON-shaped data, from JSON or XML."""
    is_xml = content_type.split(";")[0].strip().lower() in FHIR_XML
    try:
        task = Task.model_validate_xml(raw) if is_xml else Task.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise BadInput("body is not valid JSON", [Problem("Task", str(exc))]) from None
    except ValidationError as exc:
        problems = [Problem("Task." + ".".join(str(p) for p in e["loc"]), e["msg"])
                    for e in exc.errors()]
        raise BadInput(f"not a valid FHIR R4 Task ({len(problems)} problem(s))", problems) from None
    except Exception as exc:  # lxml and the XML reader raise a variety of errors
        raise BadInput("body is not a readable FHIR Task",
                       [Problem("Task", f"{type(exc).__name__}: cannot parse")]) from None
    return task.model_dump(mode="json", exclude_none=True)  # type: ignore[no-any-return]


def _identifiers(task: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(task.get("identifier", []))
    if "identifier" in task.get("focus", {}):
        found.append(task["focus"]["identifier"])
    found += [ref["identifier"] for ref in task.get("basedOn", []) if "identifier" in ref]
    return found


def task_to_status(task: dict[str, Any], mapping: TaskMapping) -> dict[str, Any]:
    """Canonical referral-status body for a Task; every problem is reported at once."""
    problems: list[Problem] = []
    cases = {i.get("value") for i in _identifiers(task) if i.get("system") == mapping.case_system}
    if len(cases) != 1:
        problems.append(Problem(
            "Task.identifier",
            f"name the LEAD case with exactly one identifier in system {mapping.case_system} "
            "(on Task.identifier, Task.focus.identifier or Task.basedOn.identifier)"))
    business = [c.get("code") for c in task.get("businessStatus", {}).get("coding", [])
                if c.get("system") == mapping.business_system]
    status = business[0] if business else mapping.task_status.get(task["status"])
    if business and business[0] not in mapping.business_status:
        problems.append(Problem("Task.businessStatus",
                                f"unknown code; use one of {sorted(mapping.business_status)}"))
    elif status is None:
        problems.append(Problem("Task.status", f"'{task['status']}' is not a referral status "
                                f"update; use one of {sorted(mapping.task_status)}"))
    occurred = task.get("lastModified") or task.get("meta", {}).get("lastUpdated")
    if not occurred:
        problems.append(Problem("Task.lastModified", "say when the status changed"))
    if problems:
        raise BadInput("this Task cannot be taken as a referral status update", problems)
    body: dict[str, Any] = {"case_ref": cases.pop(), "status": status, "occurred_at": occurred}
    if task.get("statusReason", {}).get("text"):
        body["exit_reason"] = task["statusReason"]["text"]
    return body
