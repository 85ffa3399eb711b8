"""Read YAML while remembering where each value stood, so config errors can name the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hub.errors import ConfigError

Location = tuple[str | int, ...]


def load_with_lines(file: Path) -> tuple[Any, dict[Location, int]]:
    """Parse a YAML file; return the data and a map from each value's path to its line."""
    try:
        text = file.read_text()
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    lines: dict[Location, int] = {}
    if node is not None:
        _index(node, (), lines)
    return data, lines


def _index(node: yaml.Node, loc: Location, lines: dict[Location, int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[(*loc, key.value)] = key.start_mark.line + 1
            _index(value, (*loc, key.value), lines)
            lines[(*loc, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*loc, i), lines)


def line_of(lines: dict[Location, int], loc: Location) -> int:
    """The line of the deepest known ancestor of `loc` (pydantic may add union/tag levels)."""
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return 1
