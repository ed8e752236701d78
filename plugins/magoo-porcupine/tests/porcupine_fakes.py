"""A stand-in for pvporcupine 2+ with Porcupine's exact surface; real ones need an AccessKey checked online."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Any, ClassVar

from magoo_core import hookimpl
from magoo_porcupine import Library, PorcupineDetector

KEY = "s3cr3t-AccessKey-0123456789abcdef=="


class PorcupineError(Exception):
    """pvporcupine 4's base error, as in its ``_porcupine.py``: message plus the native message stack."""

    def __init__(self, message: str = "", message_stack: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self._message = message
        self._message_stack = list(message_stack or [])

    def __str__(self) -> str:
        if not self._message_stack:
            return f"{self._message}."
        return self._message + ":" + "".join(f"\n  [{i}] {m}" for i, m in enumerate(self._message_stack))

    @property
    def message(self) -> str:
        return self._message

    @property
    def message_stack(self) -> Sequence[str]:
        return self._message_stack


class PorcupineInvalidArgumentError(PorcupineError):
    pass


class PorcupineActivationError(PorcupineError):
    pass


class PorcupineActivationLimitError(PorcupineError):
    pass


class PorcupineActivationThrottledError(PorcupineError):
    pass


class PorcupineActivationRefusedError(PorcupineError):
    pass


class PorcupineIOError(PorcupineError):
    pass


class FakeHandle:
    """``process(pcm) -> int`` over exactly ``frame_length`` samples, ``sample_rate``, ``delete()``."""

    frame_length = 512
    sample_rate = 16000

    def __init__(self, fire: dict[int, int] | None = None) -> None:
        self.fire = dict(fire or {})  # frame number (0-based) -> keyword index to return
        self.frames: list[list[int]] = []
        self.deleted = False

    def process(self, pcm: Sequence[int]) -> int:
        if self.deleted:
            raise RuntimeError("process() after delete()")
        if len(pcm) != self.frame_length:
            raise ValueError(f"Invalid frame length. expected {self.frame_length} but received {len(pcm)}")
        self.frames.append(list(pcm))
        return self.fire.get(len(self.frames) - 1, -1)

    def delete(self) -> None:
        self.deleted = True


class FakeLibrary:
    """Records each ``create`` call; returns ``handle`` or raises ``error``."""

    builtin: ClassVar[dict[str, str]] = {
        name: f"/fake/pvporcupine/resources/keyword_files/linux/{name}_linux.ppn"
        for name in ("alexa", "computer", "jarvis", "porcupine", "hey google")
    }

    def __init__(self, version: str = "4.0.3", handle: FakeHandle | None = None, error: Exception | None = None):
        self.handle = handle or FakeHandle()
        self.error = error
        self.calls: list[dict[str, Any]] = []
        self.library = Library(self.create, version, self.builtin)

    def create(self, **kwargs: Any) -> FakeHandle:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return self.handle


def plugin_with(fake: FakeLibrary) -> types.ModuleType:
    """A plugin module whose ``porcupine`` detector uses ``fake`` (for runs through the engine)."""

    class FakedDetector(PorcupineDetector):
        def __init__(self, config: PorcupineDetector.Config) -> None:
            super().__init__(config, library=fake.library)

    module = types.ModuleType("faked_porcupine_plugin")

    @hookimpl
    def magoo_register_wake_detectors(register: Any) -> None:
        register(FakedDetector)

    module.magoo_register_wake_detectors = magoo_register_wake_detectors
    return module
