"""The published sample instances, read from the folder HUB_SAMPLES_DIR names.

tests/conftest.py collects this folder only when HUB_SAMPLES_DIR is set, so a plain
`make test` neither runs nor skips anything here. Run it with
`HUB_SAMPLES_DIR=/path/to/samples .venv/bin/python -m pytest tests/conformance`; the folder
holds `niem/` and `fhir/` as published (see its SOURCES.md). When the variable is unset or
names no folder, every test here fails saying so.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.published import samples_folder


@pytest.fixture(scope="session")
def samples() -> Path:
    return samples_folder()
