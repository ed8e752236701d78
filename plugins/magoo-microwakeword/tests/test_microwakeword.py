"""The microwakeword backend with the real models on real clips (tests/data, see SOURCES.md)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import magoo_microwakeword
from magoo_core import AudioChunk, BackendError, MissingDependency, ProfileError, WakeEvent, create_plugin_manager
from magoo_core.profile import load_profile
from magoo_core.testing import run_turn
from magoo_core.testing.contracts import WakeDetectorContract
from magoo_microwakeword import BUILTIN_MODELS, MicroWakeWordDetector

DATA = Path(__file__).resolve().parents[3] / "tests" / "data"
PYMICRO = DATA / "wake" / "pymicro-wakeword"
ALL_MODELS = list(BUILTIN_MODELS)
JSON_CUTOFFS = {"alexa": 0.90, "hey_jarvis": 0.97, "hey_mycroft": 0.95, "okay_nabu": 0.85}

POSITIVES = [(f"{model}_{n}.wav", model) for model in BUILTIN_MODELS for n in (1, 2, 3)]
NEGATIVES = [
    "wake/pymicro-wakeword/computer_computer.wav",
    "wake/pymicro-wakeword/computer_hey_peppa_pig.wav",  # hey_mycroft peaks at 0.78 (cutoff 0.95)
    "wake/wyoming-openwakeword/computer.wav",
    "wake/wyoming-openwakeword/snowboy.wav",
    "wake/wyoming-openwakeword/hey_rhasspy.wav",  # a wake word with no microWakeWord model
    "wake/openWakeWord/hey_jane.wav",
    "wake/openWakeWord/negative_reference.wav",
    "wake/openWakeWord/turn_on_the_office_lights_test_clip.wav",
    *(f"negatives/{p.name}" for p in sorted((DATA / "negatives").glob("*.wav"))),
]


def read_pcm(path: Path) -> bytes:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2), path
        return wav.readframes(wav.getnframes())


def frames(pcm: bytes, frame_samples: int, pad: float = 1.0) -> list[AudioChunk]:
    """The clip between ``pad`` seconds of silence, cut into frames stamped with the audio time of their end."""
    audio = bytes(round(pad * 16000) * 2) + pcm + bytes(round(pad * 16000) * 2)
    size = frame_samples * 2
    return [
        AudioChunk(audio[start : start + size], 16000, timestamp=(start + size) / 32000)
        for start in range(0, len(audio) - size + 1, size)
    ]


@contextmanager
def detector(config: dict[str, Any]) -> Iterator[MicroWakeWordDetector]:
    backend = MicroWakeWordDetector(MicroWakeWordDetector.Config.model_validate(config))
    asyncio.run(backend.__aenter__())
    try:
        yield backend
    finally:
        asyncio.run(backend.__aexit__(None, None, None))


def detections(backend: MicroWakeWordDetector, clip: Path, *, reset_after: bool = False) -> list[WakeEvent]:
    """Every detection over the padded clip; ``reset_after`` resets after each, as the engine does."""
    found = []
    for frame in frames(read_pcm(clip), backend.frame_samples):
        event = backend.process(frame)
        if event is not None:
            found.append(event)
            if reset_after:
                backend.reset()
    return found


@pytest.fixture(scope="module")
def all_four() -> Iterator[MicroWakeWordDetector]:
    with detector({"models": ALL_MODELS}) as backend:
        yield backend


# ---- the shared contract ------------------------------------------------------------------------


class TestMicroWakeWordContract(WakeDetectorContract):
    backend_class = MicroWakeWordDetector
    config = {"models": [{"name": name} for name in ALL_MODELS]}


# ---- detections on real clips -------------------------------------------------------------------


def test_each_model_uses_the_cutoff_of_its_json(all_four):
    assert all_four.cutoffs == pytest.approx(JSON_CUTOFFS)


@pytest.mark.parametrize(("clip", "model"), POSITIVES)
def test_every_pymicro_positive_is_detected_by_its_model_alone(all_four, clip, model):
    all_four.reset()
    found = detections(all_four, PYMICRO / clip)
    assert found, f"{clip}: no detection"
    assert {event.model for event in found} == {model}
    event = found[0]
    assert event.threshold == pytest.approx(JSON_CUTOFFS[model])
    assert event.threshold < event.score <= 1.0
    assert event.label == model
    assert set(event.scores) == set(ALL_MODELS)
    assert event.scores[model] == event.score


@pytest.mark.parametrize("clip", NEGATIVES)
def test_negatives_wake_no_model(all_four, clip):
    all_four.reset()
    assert detections(all_four, DATA / clip) == []


def test_the_event_carries_the_timestamp_of_the_frame_that_fired():
    with detector({"models": ["hey_jarvis"]}) as backend:
        chunks = frames(read_pcm(PYMICRO / "hey_jarvis_2.wav"), backend.frame_samples)
        fired = [(chunk, event) for chunk in chunks if (event := backend.process(chunk)) is not None]
    assert len(fired) == 1
    chunk, event = fired[0]
    assert event.timestamp == chunk.timestamp
    assert 1.0 < event.timestamp < 1.0 + len(read_pcm(PYMICRO / "hey_jarvis_2.wav")) / 32000 + 0.5


def test_every_frames_scores_are_reported_by_label_with_the_cutoffs():
    with detector({"models": [{"name": "hey_jarvis", "label": "jarvis"}, "okay_nabu"]}) as backend:
        assert backend.scores == {}
        assert backend.thresholds == pytest.approx({"jarvis": 0.97, "okay_nabu": 0.85})
        seen, fired = [], []
        for chunk in frames(read_pcm(PYMICRO / "hey_jarvis_2.wav"), backend.frame_samples):
            event = backend.process(chunk)
            seen.append(dict(backend.scores))
            if event is not None:
                fired.append((event, seen[-1]))
    assert all(set(scores) == {"jarvis", "okay_nabu"} for scores in seen)
    ((event, scores),) = fired
    assert scores == {"jarvis": event.score, "okay_nabu": event.scores["okay_nabu"]}, "the firing frame's, not the reset's"
    assert max(s["jarvis"] for s in seen) == event.score > 0.97
    assert max(s["okay_nabu"] for s in seen) < 0.85


# ---- refractory time and reset ------------------------------------------------------------------

# okay_nabu_3.wav says "okay nabu" twice: at 1.0-1.6 s and again at 5.6-6.2 s


def test_a_detection_does_not_fire_again_on_the_same_utterance():
    with detector({"models": ["okay_nabu"], "refractory": 0.0}) as backend:
        found = detections(backend, PYMICRO / "okay_nabu_3.wav")
    assert [event.model for event in found] == ["okay_nabu", "okay_nabu"]
    assert found[1].timestamp - found[0].timestamp > 4.0


@pytest.mark.parametrize("reset_after", [False, True], ids=["alone", "reset-by-engine"])
def test_refractory_time_swallows_a_second_detection(reset_after):
    with detector({"models": ["okay_nabu"], "refractory": 6.0}) as backend:
        found = detections(backend, PYMICRO / "okay_nabu_3.wav", reset_after=reset_after)
        assert backend.stats()["detections"] == 1
    assert len(found) == 1


def test_reset_forgets_the_audio_heard_so_far():
    with detector({"models": ["hey_jarvis"]}) as backend:
        chunks = frames(read_pcm(PYMICRO / "hey_jarvis_2.wav"), backend.frame_samples)
        firing = next(i for i, chunk in enumerate(chunks) if backend.process(chunk) is not None)
        backend.reset()
        for chunk in chunks[: firing - 3]:
            assert backend.process(chunk) is None
        backend.reset()
        assert all(backend.process(chunk) is None for chunk in chunks[firing - 3 :])


# ---- options --------------------------------------------------------------------------------


def test_the_label_names_the_wake_word():
    with detector({"models": [{"name": "okay_nabu", "label": "nabu"}, "hey_jarvis"]}) as backend:
        found = detections(backend, PYMICRO / "okay_nabu_2.wav")
    assert [(event.model, event.label) for event in found] == [("okay_nabu", "nabu")]
    assert MicroWakeWordDetector.labels(backend.config) == ["nabu", "hey_jarvis"], "known before it runs (magoo check)"
    assert set(found[0].scores) == {"okay_nabu", "hey_jarvis"}


def test_a_higher_cutoff_turns_a_detection_into_a_miss():
    # okay_nabu_1 peaks at about 0.98 (models.md)
    with detector({"models": [{"name": "okay_nabu", "probability_cutoff": 0.995}]}) as backend:
        assert backend.cutoffs == {"okay_nabu": 0.995}
        assert detections(backend, PYMICRO / "okay_nabu_1.wav") == []


def test_a_lower_cutoff_is_reported_and_fires_earlier():
    with detector({"models": ["okay_nabu"]}) as backend:
        default = detections(backend, PYMICRO / "okay_nabu_1.wav")
    with detector({"models": [{"name": "okay_nabu", "probability_cutoff": 0.5}]}) as backend:
        lowered = detections(backend, PYMICRO / "okay_nabu_1.wav")
    assert lowered[0].threshold == 0.5 and lowered[0].score > 0.5
    assert lowered[0].timestamp < default[0].timestamp


def test_a_custom_model_loads_from_its_json(tmp_path):
    import pymicro_wakeword

    builtin = Path(pymicro_wakeword.__file__).parent / "models"
    shutil.copy(builtin / "okay_nabu.tflite", tmp_path / "my_nabu.tflite")
    settings = json.loads((builtin / "okay_nabu.json").read_text())
    settings["model"] = "my_nabu.tflite"
    settings["micro"]["probability_cutoff"] = 0.8
    (tmp_path / "my_nabu.json").write_text(json.dumps(settings))

    # a relative path is relative to the profile's folder
    config = MicroWakeWordDetector.Config.model_validate(
        {"models": [{"name": "my_nabu.json", "label": "mine"}]}, context={"base_dir": tmp_path}
    )
    assert config.models[0].name == str(tmp_path / "my_nabu.json")
    backend = MicroWakeWordDetector(config)
    asyncio.run(backend.__aenter__())
    try:
        assert backend.cutoffs == {"my_nabu": 0.8}
        found = detections(backend, PYMICRO / "okay_nabu_2.wav")
    finally:
        asyncio.run(backend.__aexit__(None, None, None))
    assert [(event.model, event.label, event.threshold) for event in found] == [("my_nabu", "mine", 0.8)]


def test_a_missing_custom_model_fails_at_load_naming_the_key_and_the_resolved_path(tmp_path):
    profile = tmp_path / "profile.toml"
    profile.write_text('[wake]\nbackend = "microwakeword"\nmodels = ["alexa", "models/nope.json"]\n')
    with pytest.raises(ProfileError) as caught:
        load_profile(profile, create_plugin_manager())
    [issue] = [issue for issue in caught.value.issues if issue.section == "[wake]"]  # not the rest of the profile
    assert issue.key == "models.1.name"
    assert issue.message.startswith(f"no file at {tmp_path / 'models' / 'nope.json'}")


def test_a_missing_custom_model_in_a_config_built_in_code_fails_at_start_and_says_which(tmp_path):
    backend = MicroWakeWordDetector(
        MicroWakeWordDetector.Config.model_validate({"models": [str(tmp_path / "nope.json")]})
    )
    with pytest.raises(BackendError, match="nope.json does not exist") as caught:
        asyncio.run(backend.__aenter__())
    assert caught.value.retryable is False


def test_models_may_be_plain_names_and_default_to_okay_nabu():
    config = MicroWakeWordDetector.Config.model_validate({"models": ["alexa", {"name": "hey_jarvis"}]})
    assert [model.key for model in config.models] == ["alexa", "hey_jarvis"]
    assert [model.key for model in MicroWakeWordDetector.Config().models] == ["okay_nabu"]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["hey_siri"], "not a built-in model"),
        (["alexa", {"name": "alexa", "label": "again"}], "listed more than once"),
        ([], "at least 1"),
        ([{"name": "alexa", "probability_cutoff": 1.5}], "less than 1"),
    ],
)
def test_bad_model_lists_are_profile_errors(models, message):
    with pytest.raises(ValidationError, match=message):
        MicroWakeWordDetector.Config.model_validate({"models": models})


# ---- the library is needed only when the backend starts -----------------------------------------


def test_importing_the_plugin_does_not_import_pymicro_wakeword():
    code = "import sys, magoo_microwakeword; print('pymicro_wakeword' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_library_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymicro_wakeword", None)
    backend = MicroWakeWordDetector(MicroWakeWordDetector.Config())
    with pytest.raises(MissingDependency, match="pip install magoo-microwakeword"):
        asyncio.run(backend.__aenter__())


# ---- through the whole engine -------------------------------------------------------------------


def test_a_wake_word_in_a_wav_file_starts_a_turn():
    run = run_turn(
        {
            "audio_source": {
                "backend": "wav",
                "path": str(PYMICRO / "hey_jarvis_2.wav"),
                "realtime": False,
                "lead_silence": 1.0,
            },
            "wake": {"backend": "microwakeword", "models": ["okay_nabu", {"name": "hey_jarvis", "label": "jarvis"}]},
        },
        plugins=[magoo_microwakeword],
    )
    assert run.result.fatal is None
    wakes = [kwargs["wake"] for kwargs in run.of("wake")]
    assert [(wake.model, wake.label) for wake in wakes] == [("hey_jarvis", "jarvis")]
    assert wakes[0].score >= wakes[0].threshold == pytest.approx(0.97)
    assert run.timelines[0].wake == wakes[0].timestamp
    assert not run.failures
