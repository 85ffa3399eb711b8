"""hub.auth.Principal.require: a client acts only within its scopes and as its own agency."""

from __future__ import annotations

import pytest

from hub.auth import Principal
from hub.errors import Forbidden

SFPD = Principal("santa-fe.sfpd.abc", "santa-fe", "sfpd",
                 frozenset({"diversion.write", "inbox.read"}))


def test_held_scope_and_own_agency_pass() -> None:
    """A held scope, acting as the client's own agency, is allowed."""
    assert SFPD.require("diversion.write", "sfpd") is None


def test_held_scope_without_agency_passes() -> None:
    """A held scope with no agency to check is allowed."""
    assert SFPD.require("inbox.read") is None


def test_wrong_scope_is_forbidden() -> None:
    """A scope the client lacks is Forbidden, naming the scope."""
    with pytest.raises(Forbidden, match="hold.write"):
        SFPD.require("hold.write", "sfpd")


def test_other_agency_is_forbidden() -> None:
    """Acting as another agency is Forbidden even with the right scope."""
    with pytest.raises(Forbidden, match="own agency"):
        SFPD.require("diversion.write", "da")


def test_no_scopes_forbids_everything() -> None:
    """A principal with no scopes may do nothing."""
    with pytest.raises(Forbidden):
        Principal("c", "santa-fe", "sfpd", frozenset()).require("inbox.read")
