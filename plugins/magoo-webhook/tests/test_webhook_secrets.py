"""Header values HTTP cannot carry are refused at load, by name and without the value; the
profile's secrets are masked in every body the actuator sends."""

from __future__ import annotations

import pytest

from magoo_core import ProfileError
from magoo_core.testing import build_plugins, make_profile
import magoo_webhook
from magoo_webhook import WebhookActuator

from webhook_helpers import webhook


CANNOT_CARRY = "the value of header Authorization has a character HTTP headers cannot carry at character"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("Bearer clé-secrète", f"{CANNOT_CARRY} 10"),
        ("Bearer 日本", f"{CANNOT_CARRY} 8"),
        ("Bearer tok\ten", "HOOK_TOKEN has a tab at character 11"),  # refused as any { env } value is
    ],
)
def test_a_header_value_http_cannot_carry_is_refused_naming_the_header_not_the_value(value, complaint):
    hook = webhook("http://127.0.0.1:8123/hook", headers={"Authorization": {"env": "HOOK_TOKEN"}})
    with pytest.raises(ProfileError) as raised:
        make_profile({"actuators": [hook]}, build_plugins(magoo_webhook), environ={"HOOK_TOKEN": value})
    text = str(raised.value)
    assert complaint in text
    assert value.split()[1] not in text


def test_every_body_is_masked_with_the_profiles_secrets():
    plugins = build_plugins(magoo_webhook)
    hook = webhook("http://127.0.0.1:8123/hook", headers={"Authorization": {"env": "HOOK_TOKEN"}})
    profile = make_profile({"actuators": [hook]}, plugins, environ={"HOOK_TOKEN": "Bearer tok-0123456789"})
    actuator = WebhookActuator(profile.actuators[0].config)

    class Outbox:
        sent: list = []

        def put(self, body):
            self.sent.append(body)

    actuator.outbox = Outbox()
    actuator.magoo_on_startup(profile)
    actuator._chosen = frozenset({"startup", "error"})
    from magoo_core.types import BackendFailure

    actuator.magoo_on_error(BackendFailure("stt", "x", 'refused "Bearer tok-0123456789"', True, None))
    assert Outbox.sent[-1]["message"] == 'refused "****"'
