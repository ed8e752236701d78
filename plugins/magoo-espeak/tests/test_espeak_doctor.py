"""``magoo doctor``'s row for espeak-ng: the real binary, or one that is not there."""

from __future__ import annotations

import shutil

from magoo_core.doctor import Result
from magoo_espeak import EspeakTextToSpeech


def test_the_binary_is_found_with_its_version():
    (row,) = EspeakTextToSpeech.doctor(EspeakTextToSpeech.Config(), "[tts]")
    assert (row.check, row.result) == ("espeak-ng", Result.OK)
    assert row.found.startswith("eSpeak NG text-to-speech: ") and row.found.endswith(f"at {shutil.which('espeak-ng')}")


def test_a_missing_binary_fails_saying_what_needs_it(tmp_path):
    missing = str(tmp_path / "espeak-ng")
    (row,) = EspeakTextToSpeech.doctor(EspeakTextToSpeech.Config(binary=missing), "[tts]")
    assert (row.check, row.result) == (missing, Result.FAIL)
    assert row.found == "not on PATH, and [tts] espeak speaks the replies"
    assert row.fix == "sudo apt install espeak-ng, or fix binary in [tts]"
