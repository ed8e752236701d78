"""``magoo check`` refuses a player that cannot play what the TTS makes (output_kind x plays),
for the TTS or its backup with the player or its backup, from the configs alone."""

from __future__ import annotations

import textwrap

import pytest

from magoo_core import AudioFormat, ProfileError, create_plugin_manager
from magoo_core.default_plugins.recorder import WavRecorderPlayer
from magoo_core.profile import load_profile
from magoo_mpv import MpvPlayer

HEAD = """\
[audio_source]
backend = "scripted"
segments = [{ seconds = 1 }]

[stt]
backend = "scripted"

[responder]
backend = "echo"
"""


def write(tmp_path, tail: str):
    path = tmp_path / "profile.toml"
    path.write_text(HEAD + "\n" + textwrap.dedent(tail))
    return path


def issues(path) -> list:
    with pytest.raises(ProfileError) as caught:
        load_profile(path, create_plugin_manager())
    return caught.value.issues


def test_magoo_check_refuses_a_wav_player_for_fish_mp3_in_one_line_saying_what_to_change(magoo, tmp_path):
    path = write(
        tmp_path,
        """\
        [tts]
        backend = "fish"
        api_key = "not-used"

        [player]
        backend = "wav"
        path = "out.wav"
        """,
    )
    result = magoo("check", path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{path}: 1 problem" in result.stderr
    problems = [line for line in result.stderr.splitlines() if f"{path}:" in line and "problem" not in line]
    assert problems == [
        f"  {path}:16: [player] backend: the wav player cannot play the mp3 that [tts] fish makes:"
        ' it records only PCM or WAV audio. Set [tts] format = "wav", or use a player that plays mp3 (mpv)'
    ]


@pytest.mark.parametrize(
    ("tts", "player"),
    [
        ('backend = "fish"\napi_key = "not-used"\nformat = "pcm"', 'backend = "wav"\npath = "out.wav"'),
        ('backend = "fish"\napi_key = "not-used"\nformat = "wav"', 'backend = "wav"\npath = "out.wav"'),
        ('backend = "fish"\napi_key = "not-used"\nformat = "opus"', 'backend = "mpv"'),
        ('backend = "tone"', 'backend = "wav"\npath = "out.wav"'),
        ('backend = "espeak"', 'backend = "wav"\npath = "out.wav"'),
    ],
)
def test_pairs_that_play_pass(tmp_path, tts, player):
    profile = load_profile(write(tmp_path, f"[tts]\n{tts}\n\n[player]\n{player}\n"), create_plugin_manager())
    assert profile.tts.backend in ("fish", "tone", "espeak")


def test_a_backup_tts_is_paired_with_the_player_and_its_backup(tmp_path):
    path = write(
        tmp_path,
        """\
        [tts]
        backend = "tone"

        [tts.backup]
        backend = "fish"
        api_key = "not-used"
        format = "opus"

        [player]
        backend = "mpv"

        [player.backup]
        backend = "wav"
        path = "out.wav"
        """,
    )
    [issue] = issues(path)
    assert (issue.section, issue.key) == ("[player.backup]", "backend")
    assert issue.message.startswith("the wav player cannot play the opus that [tts.backup] fish makes")
    assert issue.suggestion == 'set [tts.backup] format = "wav", or use a player that plays opus (mpv)'


def test_players_say_what_they_cannot_play():
    wav, mpv = WavRecorderPlayer.Config(path="out.wav"), MpvPlayer.Config()
    assert WavRecorderPlayer.plays(wav, AudioFormat(22050)) is None
    assert WavRecorderPlayer.plays(wav, "WAV") is None
    assert WavRecorderPlayer.plays(wav, "mp3") == "it records only PCM or WAV audio"
    assert MpvPlayer.plays(mpv, "opus") is None and MpvPlayer.plays(mpv, AudioFormat(16000)) is None
    assert MpvPlayer.plays(mpv, "speex") == "it streams mp3, opus, ogg, wav, flac, aac or PCM"
    assert MpvPlayer.plays(mpv, AudioFormat(16000, sample_width=4)) == "it streams 16-bit PCM, not 32-bit"
