"""``magoo doctor``'s rows for the mpv player: its binary, and the start check against the configured
output, on the tests' virtual PulseAudio and with no sound output at all."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from magoo_core import doctor
from magoo_core.doctor import Result
from magoo_core.plugins import create_plugin_manager
from magoo_core.testing.virtual_audio import no_sound_environment
from magoo_mpv import MpvPlayer
from magoo_mpv.process import OUTPUT_FIX


def rows_of(**config) -> list[doctor.Check]:
    return MpvPlayer.doctor(MpvPlayer.Config(**config), "[player]")


@pytest.fixture
def no_sound(virtual_audio, monkeypatch, tmp_path):
    """No PulseAudio, no PipeWire, no ALSA card, for this test (the virtual server keeps running)."""
    for key, value in no_sound_environment(tmp_path).items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize("device", ["auto", "pulse"])
def test_the_sound_output_row_is_ok_where_mpv_plays(virtual_audio, device):
    binary, output = rows_of(audio_device=device)
    assert (binary.check, binary.result) == ("mpv", Result.OK)
    assert binary.found.startswith("mpv 0.") and binary.found.endswith(f"at {shutil.which('mpv')}")
    assert (output.check, output.result) == ("[player] sound output", Result.OK)
    assert output.found.startswith(f"plays through '{device}'")


@pytest.mark.usefixtures("no_sound")
def test_no_sound_output_is_a_fail_row_with_mpvs_reason_and_the_fix():
    binary, output = rows_of()
    assert binary.result is Result.OK
    assert output.result is Result.FAIL
    assert output.found.startswith("mpv cannot open the audio output 'auto' (alsa: Playback open error: ")
    assert "Unknown PCM default" in output.found
    assert output.fix == OUTPUT_FIX


def test_a_device_that_does_not_exist_is_named(virtual_audio):
    _, output = rows_of(audio_device="alsa/plughw:CARD=NoSuchCard")
    assert output.result is Result.FAIL
    assert output.found == (
        "mpv cannot open the audio output 'alsa/plughw:CARD=NoSuchCard'"
        " (alsa: Playback open error: No such file or directory; alsa-lib: Unknown PCM plughw:CARD=NoSuchCard)"
    )


def test_options_mpv_rejects_fail_the_row_with_mpvs_words():
    _, output = rows_of(extra_args=["--no-such-option"])
    assert output.result is Result.FAIL
    assert "Error parsing option no-such-option" in output.found and output.fix == "fix mpv and extra_args in [player]"


def test_a_missing_mpv_fails_unless_mpg123_plays_the_mp3_replies(tmp_path):
    missing = str(tmp_path / "mpv")
    assert rows_of(mpv=missing, fallback="none") == [
        doctor.fail(
            missing, "not on PATH, and [player] mpv plays the replies", "sudo apt install mpv, or fix mpv in [player]"
        )
    ]
    assert shutil.which("mpg123"), "mpg123 is part of the test setup (scripts/setup.sh)"
    (row,) = rows_of(mpv=missing)
    assert row.result is Result.WARN and "mp3 plays through mpg123, other formats cannot" in row.found


@pytest.mark.usefixtures("no_sound")
async def test_in_the_report_a_backup_player_turns_the_fail_into_a_warn(tmp_path):
    path = Path(tmp_path / "player.toml")
    path.write_text(
        '[audio_source]\nbackend = "silence"\n\n[stt]\nbackend = "scripted"\ntranscripts = ["hi"]\n\n'
        '[responder]\nbackend = "echo"\n\n[tts]\nbackend = "tone"\n\n'
        '[player]\nbackend = "mpv"\n\n[player.backup]\nbackend = "wav"\npath = "out/reply-{n}.wav"\n'
    )
    context = doctor.open_context(create_plugin_manager(), path, environ={})
    assert context.problems is None, context.problems
    checks = await doctor.run_checks(context, (doctor.backends.check_backends,))
    output = next(c for c in checks if c.check == "[player] sound output")
    assert output.result is Result.WARN
    assert output.found.startswith("mpv cannot open the audio output 'auto'")
    assert output.found.endswith("; its backup wav takes over")
