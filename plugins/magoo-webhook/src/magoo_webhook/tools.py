"""Configured calls a language model may make: ``[[actuators]] webhook`` ``tools`` (issue 19).

Each entry of the actuator's ``tools`` list is one tool: its name and description for the model,
where the call goes (``url``, default the actuator's, and ``method``: from the profile, never
from the model), fixed ``fields`` of the body, and the ``arguments`` the model fills in, each
with a type and bounds. The arguments become a strict pydantic model, so a call the model makes
with a missing, unknown or out-of-range argument never reaches the receiver: the model is told
what does not fit. The body sent is ``{"tool": NAME, "arguments": {...}, **fields}``.

A call is made once (never retried: a timeout may come after the receiver acted, and a light
must not be switched twice); its answer (text or JSON) is what the model reads, an error status
or no answer is an error the model reads. Never a failed turn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from magoo_core import BackendConfig, BackendError
from magoo_core.fields import Count, Number
from magoo_core.tools import Tool

from .options import WebhookUrl

if TYPE_CHECKING:
    import httpx

    from magoo_core.secrets import Secrets

__all__ = ["Argument", "ToolCall", "make_tool"]

#: bytes of a receiver's answer read at most (the model is told at most 4000 characters of it)
MAX_ANSWER = 65_536
_TYPES = {"string": str, "integer": int, "number": float, "boolean": bool}


class Argument(BackendConfig):
    """One argument a model fills in; its bounds are checked before anything is sent."""

    type: Literal["string", "integer", "number", "boolean"] = Field("string", description="The JSON type of the value.")
    description: str = Field(..., min_length=1, max_length=300, description="What it is, for the model.")
    choices: list[str] | None = Field(
        None, min_length=1, max_length=50, description="The only values a string may have ('on', 'off'); unset: any text."
    )
    minimum: Number(-1e12, 1e12) | None = Field(None, description="Smallest number allowed (integer, number).")
    maximum: Number(-1e12, 1e12) | None = Field(None, description="Largest number allowed (integer, number).")
    max_length: Count(1, 2000) = Field(200, description="Characters of a string at most.")
    required: bool = Field(True, description="The model must give it; false: it may leave it out.")


class ToolCall(BackendConfig):
    """One configured call, offered to a language model as a tool."""

    name: str = Field(..., pattern=r"^[a-zA-Z0-9_-]{1,64}$", description="The tool's name: letters, digits, _ and -.")
    description: str = Field(..., min_length=1, max_length=1000, description="When to use it, for the model.")
    url: WebhookUrl | None = Field(None, description="Where the call goes; unset: the actuator's url.")
    method: Literal["POST", "PUT"] = Field("POST", description="HTTP method.")
    fields: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Fixed fields of the body (entity_id, action ...), never from the model."
    )
    arguments: dict[str, Argument] = Field(default_factory=dict, description="What the model fills in, by name.")

    @field_validator("arguments")
    @classmethod
    def _names(cls, arguments: dict[str, Argument]) -> dict[str, Argument]:
        for name, argument in arguments.items():
            if not name.isidentifier() or len(name) > 40:
                raise ValueError(f"argument name {name!r}: use letters, digits and _ (at most 40), not starting with a digit")
            if argument.choices is not None and argument.type != "string":
                raise ValueError(f"argument {name}: choices are for type = \"string\"")
        return arguments

    @model_validator(mode="after")
    def _no_clash(self) -> ToolCall:
        taken = sorted({"tool", "arguments"} & set(self.fields))
        if taken:
            raise ValueError(f"fields may not be named {', '.join(taken)}: the body has them already")
        return self

    def arguments_model(self) -> type[BaseModel]:
        """The strict pydantic model of :attr:`arguments` (descriptions and bounds reach the model)."""
        fields: dict[str, Any] = {}
        for name, argument in self.arguments.items():
            kind: Any = _TYPES[argument.type]
            bounds: dict[str, Any] = {"description": argument.description}
            if argument.choices is not None:
                kind = Literal[tuple(argument.choices)]
            elif argument.type == "string":
                bounds["max_length"] = argument.max_length
            elif argument.type in ("integer", "number"):
                bounds.update(ge=argument.minimum, le=argument.maximum)
                if argument.type == "number":
                    bounds["allow_inf_nan"] = False
            if not argument.required:
                kind, bounds["default"] = kind | None, None
            fields[name] = (kind, Field(**bounds))
        config = ConfigDict(extra="forbid", strict=True)
        return create_model(f"{self.name}_arguments", __config__=config, **fields)


def make_tool(
    call: ToolCall, client: Callable[[], httpx.AsyncClient | None], default_url: str, timeout: float, secrets: Callable[[], Secrets]
) -> Tool:
    """The :class:`~magoo_core.tools.Tool` of ``call``: sends with the actuator's HTTP client
    (``client()``, None while the actuator is not running), at most ``timeout`` seconds."""
    url = call.url or default_url

    async def run(arguments: BaseModel) -> Any:
        from .transport import attempt, body  # imports httpx: only once a call is made

        http = client()
        if http is None:
            raise BackendError(f"the webhook actuator is not running; {call.name} cannot be called")
        payload = {"tool": call.name, "arguments": arguments.model_dump(exclude_none=True), **call.fields}
        result = await attempt(http, call.method, url, body(payload), timeout, limit=MAX_ANSWER)
        if result.problem is not None:
            raise BackendError(secrets().mask(f"{call.name} was sent to {url}, which answered: {result.problem}"))
        response = result.response
        text = response.text.strip() if response is not None else ""
        return secrets().mask(text) if text else f"done (HTTP {result.status})"

    return Tool(call.name, call.description, run, call.arguments_model(), timeout=min(600.0, timeout + 1.0))
