"""NIEM XML from police records systems, mapped to canonical diversion notices.

Each supported exchange has a mapping file in `mappings/niem/` (XPath 1.0 per canonical
field), chosen by the document's root element. The XML is parsed without network access,
entity expansion or DTDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from lxml import etree

from hub.errors import BadInput, ConfigError, Problem

SUBJECT = "subject:"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          remove_comments=True, huge_tree=False)


@dataclass(frozen=True)
class NiemMapping:
    file: str
    version: str
    root: str
    namespaces: dict[str, str]
    subjects: str
    constants: dict[str, Any]
    local_times: tuple[str, ...]
    fields: dict[str, list[str]]
    lists: dict[str, tuple[str, dict[str, list[str]]]]


def _alternatives(spec: str | list[str]) -> list[str]:
    return [spec] if isinstance(spec, str) else list(spec)


def load_mapping(file: Path) -> NiemMapping:
    try:
        data = yaml.safe_load(file.read_text())
        mapping = NiemMapping(
            file=str(file), version=data["version"], root=data["root"],
            namespaces=dict(data["namespaces"]), subjects=data["subjects"],
            constants=dict(data.get("constants", {})),
            local_times=tuple(data.get("local_times", [])),
            fields={k: _alternatives(v) for k, v in data["fields"].items()},
            lists={k: (v["each"], {f: _alternatives(x) for f, x in v["fields"].items()})
                   for k, v in data.get("lists", {}).items()},
        )
        for path in [mapping.subjects, *(x for alts in mapping.fields.values() for x in alts)]:
            etree.XPath(path.removeprefix(SUBJECT).strip(), namespaces=mapping.namespaces)
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{file}: invalid NIEM mapping ({type(exc).__name__}: {exc})") from None
    except etree.XPathSyntaxError as exc:
        raise ConfigError(f"{file}: bad XPath ({exc})") from None
    return mapping


def load_mappings(folder: Path) -> dict[str, NiemMapping]:
    """Every mapping in the folder, keyed by the root element it reads."""
    out: dict[str, NiemMapping] = {}
    for file in sorted(folder.glob("*.yaml")):
        m = load_mapping(file)
        if m.root in out:
            raise ConfigError(f"{file}: root {m.root} is already mapped by {out[m.root].file}")
        out[m.root] = m
    return out


def _text(node: Any, alternatives: list[str], mapping: NiemMapping, subject: Any) -> str | None:
    for expr in alternatives:
        context = subject if expr.startswith(SUBJECT) else node
        found = context.xpath(expr.removeprefix(SUBJECT).strip(), namespaces=mapping.namespaces)
        for item in found if isinstance(found, list) else [found]:
            value = item.text if hasattr(item, "text") else str(item)
            if value and value.strip():
                return " ".join(value.split())
    return None


def _put(out: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        out = out.setdefault(key, {})
    out[leaf] = value


def _localise(value: str, tz: ZoneInfo) -> str:
    """Give a time without an offset the site's zone; leave anything else to validation."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed.replace(tzinfo=tz).isoformat() if parsed.tzinfo is None else value


class NiemAdapter:
    def __init__(self, mappings: dict[str, NiemMapping], site_timezone: str) -> None:
        self._mappings = mappings
        self._tz = ZoneInfo(site_timezone)

    def to_notice(self, raw: bytes, subject: int | None) -> dict[str, Any]:
        """A diversion-notice body (still to be validated) from a NIEM document."""
        try:
            doc = etree.fromstring(raw, _PARSER)
        except etree.XMLSyntaxError as exc:
            raise BadInput("body is not well-formed XML", [Problem("/", str(exc))]) from None
        mapping = self._mappings.get(doc.tag)
        if mapping is None:
            raise BadInput("unsupported NIEM exchange", [Problem(
                "/", f"root element {doc.tag} has no mapping; supported: "
                     f"{', '.join(sorted(self._mappings))}")])
        subjects = doc.xpath(mapping.subjects, namespaces=mapping.namespaces)
        if not subjects:
            raise BadInput("no arrest subject found", [Problem(mapping.subjects, "no match")])
        if subject is None and len(subjects) > 1:
            raise BadInput("the document names several subjects", [Problem(
                "query:subject", f"{len(subjects)} subjects; say which one is diverted with "
                                 f"?subject=0..{len(subjects) - 1}")])
        index = subject or 0
        if not 0 <= index < len(subjects):
            raise BadInput("no such subject", [Problem(
                "query:subject", f"must be 0..{len(subjects) - 1}")])
        chosen = subjects[index]
        body: dict[str, Any] = dict(mapping.constants)
        for path, alternatives in mapping.fields.items():
            value = _text(doc, alternatives, mapping, chosen)
            if value is not None:
                _put(body, path, _localise(value, self._tz) if path in mapping.local_times
                     else value)
        for path, (each, item_fields) in mapping.lists.items():
            items = []
            for node in doc.xpath(each, namespaces=mapping.namespaces):
                item = {f: v for f, alts in item_fields.items()
                        if (v := _text(node, alts, mapping, chosen)) is not None}
                if item:
                    items.append(item)
            if items:
                _put(body, path, items)
        return body
