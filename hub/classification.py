"""Data classes of canonical fields, loaded from the mapping file and checked against the models."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from hub.errors import ConfigError
from hub.messages import MODELS, MessageType


class DataClass(StrEnum):
    IDENTITY = "identity"
    CONTACT = "contact"
    JUSTICE = "justice"
    REFERRAL = "referral"
    ENGAGEMENT = "engagement"
    TREATMENT = "treatment"
    CLINICAL = "clinical"
    COUNSELING_NOTES = "counseling-notes"


@dataclass(frozen=True)
class FieldValue:
    """One leaf of a message: where it is, what class it is, and its value."""

    path: str  # concrete, e.g. incident.charges[1].statute
    pattern: str  # as declared, e.g. incident.charges[].statute
    data_class: DataClass
    value: Any


@dataclass(frozen=True)
class Catalogue:
    version: str
    classes: dict[MessageType, dict[str, DataClass]]
    essential: dict[MessageType, frozenset[str]]

    def flatten(self, message_type: MessageType, body: dict[str, Any]) -> list[FieldValue]:
        """Every present leaf of a message body (JSON form) with its data class."""
        declared = self.classes[message_type]
        out: list[FieldValue] = []
        _walk(body, "", "", declared, out)
        return out


def _walk(
    node: Any, path: str, pattern: str, declared: dict[str, DataClass], out: list[FieldValue]
) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None:
                continue
            sep = "." if path else ""
            _walk(value, f"{path}{sep}{key}", f"{pattern}{sep}{key}", declared, out)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _walk(item, f"{path}[{i}]", f"{pattern}[]", declared, out)
    else:
        data_class = declared.get(pattern)
        if data_class is None:  # the load-time check makes this unreachable for valid bodies
            raise ConfigError(f"field {pattern!r} has no data class in the mapping file")
        out.append(FieldValue(path, pattern, data_class, node))


def model_leaf_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Declared leaf paths of a canonical model, `[]` marking list items."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        paths |= _leaf_paths(info.annotation, f"{prefix}{name}")
    return paths


def _leaf_paths(annotation: Any, path: str) -> set[str]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return set().union(*(_leaf_paths(a, path) for a in args))
    if origin is typing.Annotated:
        return _leaf_paths(typing.get_args(annotation)[0], path)
    if origin is list:
        return _leaf_paths(typing.get_args(annotation)[0], f"{path}[]")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_leaf_paths(annotation, f"{path}.")
    return {path}


def load_catalogue(file: str | Path) -> Catalogue:
    """Read and check the mapping file; errors name the file, the line and the field."""
    file = Path(file)
    try:
        root = yaml.compose(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read mapping file: {exc}") from None
    if not isinstance(root, yaml.MappingNode):
        raise ConfigError(f"{file}:1: expected a mapping with 'version' and 'messages'")
    top = {k.value: v for k, v in root.value}
    version_node, messages_node = top.get("version"), top.get("messages")
    if not isinstance(version_node, yaml.ScalarNode):
        raise ConfigError(f"{file}:1: 'version' is missing")
    if not isinstance(messages_node, yaml.MappingNode):
        raise ConfigError(f"{file}:1: 'messages' is missing or not a mapping")

    errors: list[str] = []
    classes: dict[MessageType, dict[str, DataClass]] = {}
    for key_node, fields_node in messages_node.value:
        line = key_node.start_mark.line + 1
        try:
            message_type = MessageType(key_node.value)
        except ValueError:
            errors.append(f"{file}:{line}: unknown message type {key_node.value!r}")
            continue
        if not isinstance(fields_node, yaml.MappingNode):
            errors.append(f"{file}:{line}: {message_type} must map field paths to data classes")
            continue
        known = model_leaf_paths(MODELS[message_type])
        declared: dict[str, DataClass] = {}
        for path_node, class_node in fields_node.value:
            fline = path_node.start_mark.line + 1
            if path_node.value in declared:
                errors.append(f"{file}:{fline}: {message_type}.{path_node.value} declared twice")
            if path_node.value not in known:
                errors.append(f"{file}:{fline}: {message_type} has no field {path_node.value!r}")
                continue
            try:
                declared[path_node.value] = DataClass(class_node.value)
            except ValueError:
                errors.append(
                    f"{file}:{fline}: {message_type}.{path_node.value}: unknown data class "
                    f"{class_node.value!r} (one of: {', '.join(DataClass)})"
                )
        for missing in sorted(known - declared.keys()):
            errors.append(f"{file}:{line}: {message_type}.{missing} has no data class")
        classes[message_type] = declared
    for absent in sorted(set(MessageType) - classes.keys()):
        errors.append(f"{file}: message type {absent} is not declared")
    essential = _essential(file, top.get("essential"), classes, errors)
    if errors:
        raise ConfigError("mapping file is invalid:\n  " + "\n  ".join(errors))
    return Catalogue(version=version_node.value, classes=classes, essential=essential)


def _essential(
    file: Path,
    node: yaml.Node | None,
    classes: dict[MessageType, dict[str, DataClass]],
    errors: list[str],
) -> dict[MessageType, frozenset[str]]:
    if not isinstance(node, yaml.MappingNode):
        errors.append(f"{file}: 'essential' is missing: name the fields each message needs")
        return {}
    out: dict[MessageType, frozenset[str]] = {}
    for key_node, list_node in node.value:
        line = key_node.start_mark.line + 1
        try:
            message_type = MessageType(key_node.value)
        except ValueError:
            errors.append(f"{file}:{line}: essential: unknown message type {key_node.value!r}")
            continue
        items = list(getattr(list_node, "value", []))
        for item in items:
            if item.value not in classes.get(message_type, {}):
                errors.append(f"{file}:{item.start_mark.line + 1}: essential.{message_type}: "
                              f"no field {item.value!r}")
        out[message_type] = frozenset(item.value for item in items)
    return out
