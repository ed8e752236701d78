"""The contracts every magoo actuator and responder pass, the responder against a real receiver."""

from __future__ import annotations

import pytest

from magoo_core.testing.contracts import ActuatorContract, ResponderContract
from magoo_webhook import WebhookActuator, WebhookResponder

from webhook_helpers import Receiver, json_answer


class TestWebhookActuatorContract(ActuatorContract):
    backend_class = WebhookActuator
    config = {"url": "http://127.0.0.1:9/hook", "events": ["wake", "turn_end"]}  # enters and leaves: sends nothing


class TestWebhookResponderContract(ResponderContract):
    backend_class = WebhookResponder

    @pytest.fixture(autouse=True)
    def receiver(self):
        with Receiver(default=json_answer({"text": "It is noon."})) as receiver:
            self.config = {"url": receiver.url}
            yield receiver

    def test_the_question_reached_the_receiver(self, receiver) -> None:
        self.test_answers()
        assert [r.json["text"] for r in receiver.requests] == [self.question]
