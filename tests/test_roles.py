"""The role table (``magoo_core.roles.ROLES``): one row per role, and everything else reads it."""

from __future__ import annotations

import inspect

from magoo_core import hookspecs
from magoo_core.plugin_checks import REQUIRED_METHODS
from magoo_core.plugin_loading import REGISTRATION_HOOKS
from magoo_core.profile import ROLE_ORDER, _SECTIONS
from magoo_core.roles import ROLES, Role


def test_every_role_has_exactly_one_row_in_role_order():
    assert [info.role for info in ROLES] == list(Role)
    assert ROLE_ORDER == tuple(Role)


def test_each_rows_hook_is_a_registration_spec_and_its_methods_are_the_protocols():
    for info in ROLES:
        spec = getattr(hookspecs, info.register_hook)
        assert list(inspect.signature(spec).parameters) == ["register"], info.role
        for method in info.methods:
            assert callable(getattr(info.protocol, method, None)), f"{info.protocol.__name__} has no {method}()"


def test_the_loader_the_checks_and_the_profile_read_the_table():
    assert REGISTRATION_HOOKS == {info.role: info.register_hook for info in ROLES}
    assert REQUIRED_METHODS == {info.role: info.methods for info in ROLES}
    assert {name: section for name, section in _SECTIONS.items() if name in set(Role)} == {
        "audio_source": "[audio_source]", "wake": "[wake]", "stt": "[stt]", "responder": "[responder]",
        "tts": "[tts]", "player": "[player]", "actuators": "[[actuators]]",
    }
    assert [info.role for info in ROLES if info.required] == [Role.AUDIO_SOURCE, Role.STT]
    assert Role.STT.title == "speech-to-text" and Role.ACTUATOR.info.many
