"""The emulator's state directory."""

from __future__ import annotations

import pytest

from satchel.testing.state import State


def test_state_of_another_format_is_refused(tmp_path):
    state = State(tmp_path / "emu")
    with state.begin() as conn:
        state.set_setting(conn, "format", 99)
    state.close()
    with pytest.raises(RuntimeError, match="format 99"):
        State(tmp_path / "emu")
