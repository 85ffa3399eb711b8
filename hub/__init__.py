"""LEAD Hub: the interagency data-exchange hub for Law Enforcement Assisted Diversion."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
