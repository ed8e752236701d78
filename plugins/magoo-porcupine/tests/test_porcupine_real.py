"""Real detection with pvporcupine 1.9.5 (no AccessKey) on the repository's wake word clips.

The workspace pins pvporcupine==1.9.5 (root pyproject, [tool.uv] constraint-dependencies).
Porcupine is deterministic: these clips give the same answer on every run of one library.
"""

from __future__ import annotations

import asyncio
import platform
import wave
from pathlib import Path

import pytest

from magoo_core import AudioChunk, BackendError, WakeEvent
from magoo_core.testing import run_turn
from magoo_core.testing.contracts import WakeDetectorContract
from magoo_porcupine import PorcupineDetector, _library

pvporcupine = pytest.importorskip("pvporcupine")
if _library.load_library().generation != 1:
    pytest.skip("real detection needs pvporcupine 1.x (2+ needs an AccessKey)", allow_module_level=True)

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"
WAKE = DATA / "wake"

ALEXA = [
    WAKE / "openWakeWord" / "alexa_test.wav",
    WAKE / "pymicro-wakeword" / "alexa_1.wav",
    WAKE / "pymicro-wakeword" / "alexa_2.wav",
    WAKE / "pymicro-wakeword" / "alexa_3.wav",
    WAKE / "wyoming-openwakeword" / "alexa.wav",
]
JARVIS = [  # pymicro hey_jarvis_1 is a known miss of Porcupine 1.9 (models.md: real jarvis 3/4)
    WAKE / "wyoming-openwakeword" / "hey_jarvis.wav",
    WAKE / "pymicro-wakeword" / "hey_jarvis_2.wav",
    WAKE / "pymicro-wakeword" / "hey_jarvis_3.wav",
]
NEGATIVES = [
    DATA / "negatives" / "espeak_gpl3_speech_60s.wav",
    DATA / "negatives" / "white_noise_10s.wav",
    DATA / "negatives" / "pink_noise_10s.wav",
    WAKE / "openWakeWord" / "negative_reference.wav",
    WAKE / "openWakeWord" / "turn_on_the_office_lights_test_clip.wav",
    WAKE / "openWakeWord" / "hey_jane.wav",
    WAKE / "openWakeWord" / "hey_mycroft_test.wav",
    WAKE / "wyoming-openwakeword" / "hey_rhasspy.wav",
    WAKE / "wyoming-openwakeword" / "okay_nabu.wav",
    WAKE / "pymicro-wakeword" / "computer_hey_peppa_pig.wav",
]
# "computer" and "snowboy" are built-in keywords too, and some negatives of other engines say them
NOT_SAID = ["alexa", "jarvis", "porcupine", "bumblebee", "terminator", "picovoice", "grasshopper", "blueberry"]
CHUNK = 1280  # 80 ms, as the engine's sources deliver: process() re-cuts into Porcupine's 512


def clip(path: Path, pad: float = 1.0) -> bytes:
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        pcm = wav.readframes(wav.getnframes())
    silence = bytes(2 * round(16000 * pad))
    return silence + pcm + silence


def detect(path: Path, keywords: list[str], chunk: int = CHUNK) -> list[WakeEvent]:
    async def run() -> list[WakeEvent]:
        detector = PorcupineDetector(PorcupineDetector.Config(keywords=keywords))
        async with detector:
            pcm = clip(path)
            events = []
            for start in range(0, len(pcm), 2 * chunk):
                piece = pcm[start : start + 2 * chunk]
                event = detector.process(AudioChunk(piece, 16000, timestamp=(start + len(piece)) / 32000))
                if event is not None:
                    events.append(event)
                    detector.reset()  # as the engine does after a detection
            return events

    return asyncio.run(run())


@pytest.mark.parametrize("path", ALEXA, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_alexa_clips_wake_alexa_once(path):
    events = detect(path, ["alexa"])
    assert [(e.model, e.score, e.threshold) for e in events] == [("alexa", 1.0, 0.5)]
    assert 1.0 < events[0].timestamp < 1.0 + 4.0, "the capture time of the frame that fired, inside the clip"


@pytest.mark.parametrize("path", JARVIS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_jarvis_clips_wake_the_second_of_two_keywords(path):
    events = detect(path, ["alexa", "jarvis"])
    assert [e.model for e in events] == ["jarvis"]
    assert dict(events[0].scores) == {"alexa": 0.0, "jarvis": 1.0}


@pytest.mark.parametrize("path", NEGATIVES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_speech_noise_and_other_wake_words_do_not_wake(path):
    assert detect(path, NOT_SAID) == []


def test_reset_in_the_middle_of_a_keyword_means_it_cannot_fire():
    """Porcupine has no reset: the detector washes its window with silence, so half a keyword is forgotten."""
    pcm = clip(ALEXA[1])
    frames = [pcm[i : i + 1024] for i in range(0, len(pcm) - 1023, 1024)]

    async def run(reset_at: int | None) -> list[int]:
        detector = PorcupineDetector(PorcupineDetector.Config(keywords=["alexa"]))
        async with detector:
            fired = []
            for index, frame in enumerate(frames):
                if index == reset_at:
                    detector.reset()
                if detector.process(AudioChunk(frame, 16000)) is not None:
                    fired.append(index)
            return fired

    (fires_at,) = asyncio.run(run(None))
    assert asyncio.run(run(fires_at - 10)) == [], "0.32 s before the end of 'alexa'"
    assert asyncio.run(run(fires_at - 40)) == [fires_at], "a reset long before the keyword changes nothing"


def test_an_unknown_keyword_lists_the_built_in_ones():
    detector = PorcupineDetector(PorcupineDetector.Config(keywords=["hey magoo"]))
    with pytest.raises(BackendError) as caught:
        asyncio.run(detector.__aenter__())
    assert "not a built-in keyword of pvporcupine 1.9.5" in caught.value.message
    assert "americano" in caught.value.message


class TestPorcupineContract(WakeDetectorContract):
    backend_class = PorcupineDetector
    config = {"keywords": ["alexa", "jarvis", "computer"]}


# ---- CPUs that pvporcupine 1.x does not recognise (a Raspberry Pi 5) ----------------------------

x86_64_linux = pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() != "x86_64", reason="uses the bundled Linux x86_64 library"
)
PACKAGE = Path(pvporcupine.__file__).parent


def _unsupported_cpu(*args, **kwargs):
    raise NotImplementedError("Unsupported platform.")  # what 1.9.5's import raises on a Pi 5


def test_an_unrecognised_cpu_without_library_path_says_what_to_set(monkeypatch):
    monkeypatch.setattr(_library, "require", _unsupported_cpu)
    detector = PorcupineDetector(PorcupineDetector.Config(keywords=["alexa"]))
    with pytest.raises(BackendError) as caught:
        asyncio.run(detector.__aenter__())
    message = caught.value.message
    assert "library_path" in message and "Raspberry Pi 5" in message and "cortex-a72-aarch64" in message
    assert caught.value.retryable is False


@x86_64_linux
def test_an_unrecognised_cpu_with_library_path_loads_pvporcupine_by_hand(monkeypatch):
    monkeypatch.setattr(_library, "require", _unsupported_cpu)
    library_path = PACKAGE / "lib" / "linux" / "x86_64" / "libpv_porcupine.so"
    library = _library.load_library(library_path)
    assert library.generation == 1 and library.keyword_paths["alexa"].endswith("linux/alexa_linux.ppn")

    async def run() -> list[WakeEvent]:
        config = PorcupineDetector.Config(keywords=["alexa"], library_path=library_path)
        detector = PorcupineDetector(config, library=library)
        async with detector:
            pcm = clip(ALEXA[0])
            frames = (pcm[i : i + 2 * CHUNK] for i in range(0, len(pcm), 2 * CHUNK))
            return [e for e in (detector.process(AudioChunk(f, 16000)) for f in frames) if e is not None]

    assert [e.model for e in asyncio.run(run())] == ["alexa"]


# ---- through the engine -------------------------------------------------------------------------


def test_a_wake_clip_through_the_engine_starts_a_turn_with_the_right_keyword():
    import magoo_porcupine

    run = run_turn(
        {
            "audio_source": {"backend": "wav", "path": str(ALEXA[0]), "realtime": False, "lead_silence": 0.5},
            "wake": {"backend": "porcupine", "keywords": ["jarvis", "alexa"], "labels": ["Jarvis", "Alexa"]},
        },
        plugins=[magoo_porcupine],
        timeout=60,
    )
    assert run.result.fatal is None
    wakes = [event["wake"] for event in run.of("wake")]
    assert [(w.model, w.label, w.score) for w in wakes] == [("alexa", "Alexa", 1.0)]
    assert [t.outcome.value for t in run.timelines] == ["ok"]


def test_speech_through_the_engine_does_not_wake():
    import magoo_porcupine

    run = run_turn(
        {
            "audio_source": {"backend": "wav", "path": str(NEGATIVES[0]), "realtime": False},
            "wake": {"backend": "porcupine", "keywords": NOT_SAID},
        },
        plugins=[magoo_porcupine],
        timeout=60,
    )
    assert run.result.fatal is None
    assert run.of("wake") == [] and run.timelines == []
