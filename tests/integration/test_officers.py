"""Compliance officers' console accounts can be disabled, and then nothing they hold works."""

from __future__ import annotations

import pytest

from hub.bootstrap import Hub
from hub.console.officers import Officers
from hub.errors import Unauthenticated
from tests.harness import hub_cli


def test_a_disabled_officer_cannot_sign_in_and_open_sessions_end(hub: Hub) -> None:
    """`hub officer disable` refuses the password and makes the open session's officer unknown."""
    officers = Officers(hub.engine, hub.site)
    signed, password = officers.add("jo.tester", "compliance", "Jo Tester")
    assert officers.authenticate("jo.tester", password).username == "jo.tester"
    result = hub_cli(hub.settings, "officer", "disable", "jo.tester")
    assert result.returncode == 0, result.stderr
    with pytest.raises(Unauthenticated):
        officers.authenticate("jo.tester", password)
    assert officers.current(signed.id) is None
    unknown = hub_cli(hub.settings, "officer", "disable", "nobody")
    assert unknown.returncode == 2 and "no officer named 'nobody'" in unknown.stderr
