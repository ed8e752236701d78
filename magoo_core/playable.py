"""Can the profile's player play what its TTS makes? Answered from the configs, before anything starts.

A TTS may say what it yields with the classmethod ``output_kind(config)``; a player may say what it
cannot play with the classmethod ``plays(config, output)`` (see ``roles.TextToSpeech`` and
``roles.Player``). ``magoo check`` asks about every pair that can occur: the TTS or its backup with
the player or its backup. A backend without the classmethod is trusted.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass

from .plugin_registry import Plugins
from .roles import Role
from .types import AudioFormat


@dataclass(frozen=True, slots=True)
class Mismatch:
    """A player that cannot play a TTS's audio: where to report it and what to say.

    :param section: the player's section (``"[player]"`` or ``"[player.backup]"``).
    :param message: what is wrong, naming both backends and the kind of audio.
    :param suggestion: what to change: a TTS setting that makes audio the player plays, and the
        installed players that play this kind.
    """

    section: str
    message: str
    suggestion: str


def kind_name(output: AudioFormat | str) -> str:
    """``"mp3"`` for a codec, ``"PCM"`` for an ``AudioFormat``: how messages name a kind of audio."""
    return "PCM" if isinstance(output, AudioFormat) else str(output)


def output_kind(spec: typing.Any) -> AudioFormat | str | None:
    """The TTS ``spec``'s ``output_kind(config)``, or None when it has none (or cannot tell)."""
    method = getattr(spec.info.cls, "output_kind", None)
    return method(spec.config) if callable(method) else None


def refusal(spec: typing.Any, output: AudioFormat | str) -> str | None:
    """Why the player ``spec`` cannot play ``output``, or None when it can (or does not say)."""
    method = getattr(spec.info.cls, "plays", None)
    return method(spec.config, output) if callable(method) else None


def mismatches(tts: typing.Any, player: typing.Any, plugins: Plugins) -> Iterator[Mismatch]:
    """Every pair of ``tts`` (or its backup) and ``player`` (or its backup) that cannot work.

    :param tts: the profile's TTS ``BackendSpec``, or None.
    :param player: the profile's player ``BackendSpec``, or None.
    """
    if tts is None or player is None:
        return
    for speaker in filter(None, (tts, tts.backup)):
        output = output_kind(speaker)
        if output is None:
            continue
        for listener in filter(None, (player, player.backup)):
            why = refusal(listener, output)
            if why is None:
                continue
            kind = kind_name(output)
            fixes = [_tts_fix(speaker, listener)]
            players = _players_of(output, plugins)
            if players:
                fixes.append(f"use a player that plays {kind} ({', '.join(players)})")
            yield Mismatch(
                listener.section,
                f"the {listener.backend} player cannot play the {kind} that {speaker.section} {speaker.backend}"
                f" makes: {why}",
                ", or ".join(filter(None, fixes)),
            )


def _tts_fix(speaker: typing.Any, listener: typing.Any) -> str | None:
    """``set [tts] format = "pcm"`` when the TTS has a ``format`` choice whose audio the player plays."""
    field = type(speaker.config).model_fields.get("format")
    if field is None or typing.get_origin(field.annotation) is not typing.Literal:
        return None
    for choice in typing.get_args(field.annotation):
        try:
            output = speaker.info.cls.output_kind(speaker.config.model_copy(update={"format": choice}))
        except Exception:  # noqa: BLE001 - a hint only: a TTS that cannot answer gets none
            continue
        if output is not None and refusal(listener, output) is None:
            return f'set {speaker.section} format = "{choice}"'
    return None


def _players_of(output: AudioFormat | str, plugins: Plugins) -> list[str]:
    """The installed players that say they play ``output`` with their default config."""
    found = []
    for name in plugins.names(Role.PLAYER):
        info = plugins.backend(Role.PLAYER, name)
        plays = getattr(info.cls, "plays", None) if info is not None else None
        if not callable(plays):
            continue
        try:
            if plays(info.cls.Config(), output) is None:
                found.append(name)
        except Exception:  # noqa: BLE001 - a player whose config has required keys is not suggested
            continue
    return found
