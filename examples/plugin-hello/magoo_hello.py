"""magoo-hello: a complete third-party magoo plugin — a responder that greets, then answers."""

from typing import ClassVar

from pydantic import Field

from magoo_core import Backend, BackendConfig, BackendError, Reply, Transcript, hookimpl


class HelloResponder(Backend):
    """Greets the user and says back what it heard."""

    name: ClassVar[str] = "hello"

    class Config(BackendConfig):
        greeting: str = Field("Hello!", description="What to say first.")
        banned: list[str] = Field(default_factory=list, description="Words it refuses to repeat.")

    async def respond(self, transcript: Transcript) -> Reply | None:
        words = set(transcript.text.lower().split())
        if words & set(self.config.banned):
            raise BackendError("heard a banned word; not answering", retryable=False)
        return Reply(f"{self.config.greeting} You said: {transcript.text}")


@hookimpl
def magoo_register_responders(register):
    register(HelloResponder)
