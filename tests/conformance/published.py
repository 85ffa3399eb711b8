"""Where the published sample instances are: the folder HUB_SAMPLES_DIR names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SAMPLES_ENV = "HUB_SAMPLES_DIR"


def samples_folder() -> Path:
    """The samples folder, or a failure saying why there is none."""
    value = os.environ.get(SAMPLES_ENV, "")
    if not value:
        pytest.fail(f"{SAMPLES_ENV} is not set: point it at the folder of published sample "
                    "instances (with niem/ and fhir/) to run tests/conformance", pytrace=False)
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        pytest.fail(f"{SAMPLES_ENV}={value!r}: no such folder ({path}); point it at the folder "
                    "of published sample instances (with niem/ and fhir/)", pytrace=False)
    return path


def sample(samples: Path, name: str) -> Path:
    """One published instance, by its path under the samples folder."""
    path = samples / name
    assert path.is_file(), f"{path}: missing from {SAMPLES_ENV} (expected as published)"
    return path
