"""The detector against a stand-in with Porcupine's exact surface: keys, errors, frames, refractory.

pvporcupine 2 and later check the AccessKey online, so these tests never create a real engine
with a key; the stand-in in porcupine_fakes.py copies pvporcupine 4's errors and handle.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from porcupine_fakes import (
    KEY,
    FakeHandle,
    FakeLibrary,
    PorcupineActivationError,
    PorcupineActivationLimitError,
    PorcupineActivationRefusedError,
    PorcupineActivationThrottledError,
    PorcupineInvalidArgumentError,
    PorcupineIOError,
    plugin_with,
)
from pydantic import ValidationError

from magoo_core import AudioChunk, BackendError, ProfileError, WakeEvent, create_plugin_manager
from magoo_core.audio import silence
from magoo_core.profile import load_profile
from magoo_core.reporter import no_wake_story
from magoo_core.testing import run_turn
from magoo_core.wake_scores import WakeScoreboard
from magoo_porcupine import PorcupineDetector

Config = PorcupineDetector.Config


def detector(fake: FakeLibrary, **config) -> PorcupineDetector:
    return PorcupineDetector(Config.model_validate({"keywords": ["alexa"], **config}), library=fake.library)


def started(fake: FakeLibrary, **config) -> PorcupineDetector:
    backend = detector(fake, **config)
    asyncio.run(backend.__aenter__())
    return backend


def start_error(fake: FakeLibrary, **config) -> BackendError:
    with pytest.raises(BackendError) as caught:
        started(fake, **config)
    return caught.value


def pcm(samples: int, first: int = 0) -> AudioChunk:
    """Mono 16 kHz audio whose samples count up from ``first``, so frames can be told apart."""
    values = [(first + i) % 30000 for i in range(samples)]
    data = b"".join(v.to_bytes(2, "little", signed=True) for v in values)
    return AudioChunk(data, 16000, timestamp=(first + samples) / 16000)


# ---- the AccessKey ------------------------------------------------------------------------------


def test_generation_2_gets_the_access_key_and_the_keyword_files():
    fake = FakeLibrary("4.0.3")
    started(fake, keywords=["alexa", "jarvis"], sensitivities=[0.3, 0.7], access_key=KEY)
    (call,) = fake.calls
    assert call["access_key"] == KEY
    assert call["keyword_paths"] == [FakeLibrary.builtin["alexa"], FakeLibrary.builtin["jarvis"]]
    assert call["sensitivities"] == [0.3, 0.7]
    assert call["library_path"] is None and call["model_path"] is None


def test_generation_2_without_a_key_says_how_to_get_one_or_which_version_needs_none():
    fake = FakeLibrary("2.2.1")
    error = start_error(fake)
    assert not fake.calls, "no engine is created without a key"
    assert error.retryable is False
    assert "PV_ACCESS_KEY" in error.message and "console.picovoice.ai" in error.message
    assert "pvporcupine==1.9.5" in error.message


def test_generation_1_gets_no_key_and_warns_once_without_showing_it(caplog):
    fake = FakeLibrary("1.9.5")
    with caplog.at_level(logging.DEBUG):
        started(fake, access_key=KEY)
    assert "access_key" not in fake.calls[0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ignored" in warnings[0].getMessage()
    assert KEY not in caplog.text


def test_an_empty_key_counts_as_none():
    error = start_error(FakeLibrary("4.0.3"), access_key="")
    assert "needs a Picovoice AccessKey" in error.message


def test_the_key_is_secret_in_the_config():
    config = Config.model_validate({"keywords": ["alexa"], "access_key": KEY})
    assert KEY not in repr(config) and KEY not in str(config.model_dump())


# ---- pvporcupine's errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retryable", "words"),
    [
        (
            PorcupineInvalidArgumentError(
                "Initialization failed", ["AccessKey is invalid.", f"Failed to parse AccessKey `{KEY}`"]
            ),
            False,
            "AccessKey is invalid",
        ),
        (PorcupineActivationLimitError("Initialization failed", [f"key {KEY} reached its limit"]), False, "limit"),
        (PorcupineActivationThrottledError("Initialization failed"), True, "throttling"),
        (PorcupineActivationRefusedError("Initialization failed", [KEY]), False, "refused"),
        (PorcupineActivationError("Initialization failed", ["network unreachable"]), True, "network"),
        (PorcupineIOError("Initialization failed", ["cannot open /x/hey_linux.ppn"]), False, "/x/hey_linux.ppn"),
        (ValueError("access_key should be a non-empty string."), False, "non-empty"),
        (OSError("Couldn't find Porcupine's dynamic library at '/nope/libpv_porcupine.so'."), False, "/nope"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_errors_become_readable_backend_errors_without_the_key(error, retryable, words, caplog):
    with caplog.at_level(logging.DEBUG):
        mapped = start_error(FakeLibrary("4.0.3", error=error), access_key=KEY)
    assert words in mapped.message
    assert mapped.retryable is retryable
    assert KEY not in mapped.message and KEY not in caplog.text
    assert "\n" not in mapped.message
    assert mapped.__suppress_context__, "the original (which may quote the key) is not chained into tracebacks"


def test_a_failure_we_do_not_understand_stays_a_bug():
    with pytest.raises(ZeroDivisionError):
        started(FakeLibrary("4.0.3", error=ZeroDivisionError("bug")), access_key=KEY)


def test_generation_1_invalid_argument_explains_version_bound_keyword_files():
    error = start_error(FakeLibrary("1.9.5", error=ValueError()))  # 1.9.5 raises bare ValueError()
    assert "Porcupine 1.9" in error.message and ".ppn" in error.message
    assert error.retryable is False


def test_an_unknown_builtin_keyword_suggests_the_closest_and_lists_them():
    fake = FakeLibrary("1.9.5")
    error = start_error(fake, keywords=["jarvs"])
    assert "Did you mean 'jarvis'?" in error.message
    assert "hey google" in error.message and "keyword_paths" in error.message
    assert not fake.calls


@pytest.mark.parametrize(
    ("setting", "key", "missing"),
    [
        ('keyword_paths = ["hey-magoo_en_linux.ppn"]', "keyword_paths.0", "hey-magoo_en_linux.ppn"),
        ('keywords = ["alexa"]\nmodel_path = "params.pv"', "model_path", "params.pv"),
        ('keywords = ["alexa"]\nlibrary_path = "lib/x.so"', "library_path", "lib/x.so"),
    ],
)
def test_a_missing_file_fails_at_load_naming_the_key_and_the_resolved_path(tmp_path, setting, key, missing):
    profile = tmp_path / "profile.toml"
    profile.write_text(f'[wake]\nbackend = "porcupine"\n{setting}\n')
    with pytest.raises(ProfileError) as caught:
        load_profile(profile, create_plugin_manager())
    [issue] = [issue for issue in caught.value.issues if issue.section == "[wake]"]  # not the rest of the profile
    assert issue.key == key
    assert issue.message.startswith(f"no file at {tmp_path / missing}")


def test_a_missing_keyword_file_in_a_config_built_in_code_is_named_at_start(tmp_path):
    error = start_error(FakeLibrary("1.9.5"), keywords=[], keyword_paths=[str(tmp_path / "hey-magoo_en_linux.ppn")])
    assert "hey-magoo_en_linux.ppn" in error.message


def test_the_key_never_reaches_the_engines_failure_or_logs(caplog):
    fake = FakeLibrary("4.0.3", error=PorcupineInvalidArgumentError("Initialization failed", [f"bad key {KEY}"]))
    wake = {"backend": "porcupine", "keywords": ["alexa"], "access_key": {"env": "PV_ACCESS_KEY"}}
    with caplog.at_level(logging.DEBUG):
        run = run_turn({"wake": wake}, plugins=[plugin_with(fake)], environ={"PV_ACCESS_KEY": KEY}, timeout=30)
    assert fake.calls[0]["access_key"] == KEY, "the profile's { env = ... } reached pvporcupine"
    assert run.result.fatal and "rejected its settings" in run.result.fatal
    assert KEY not in run.result.fatal and KEY not in caplog.text
    assert all(KEY not in str(arguments) for _, arguments in run.events)


# ---- frames, events, refractory, reset ----------------------------------------------------------


def test_declares_16_khz_and_porcupines_frame_length_before_and_after_start():
    fake = FakeLibrary("1.9.5")
    backend = detector(fake)
    assert (backend.input_format.sample_rate, backend.input_format.channels, backend.frame_samples) == (16000, 1, 512)
    asyncio.run(backend.__aenter__())
    assert (backend.input_format.sample_rate, backend.frame_samples) == (16000, 512)


def test_any_chunk_size_is_recut_into_exact_frames_in_order():
    fake = FakeLibrary("1.9.5")
    backend = started(fake)
    sizes = [100, 700, 512, 1, 1000, 735]  # 3048 samples: 5 frames + 488 held back
    first = 0
    for size in sizes:
        backend.process(pcm(size, first))
        first += size
    assert [len(f) for f in fake.handle.frames] == [512] * 5
    flat = [v for frame in fake.handle.frames for v in frame]
    assert flat == list(range(5 * 512)), "no sample lost, repeated or reordered"


def test_a_detection_reports_the_keyword_label_and_capture_time():
    fake = FakeLibrary("1.9.5", handle=FakeHandle(fire={2: 1}))
    backend = started(fake, keywords=["alexa", "jarvis"], sensitivities=[0.4, 0.6], labels=["Alexa", "Jarvis"])
    events = [backend.process(pcm(512, i * 512)) for i in range(4)]
    assert events[0] is None and events[1] is None and events[3] is None
    event = events[2]
    assert isinstance(event, WakeEvent)
    assert (event.model, event.label, event.score, event.threshold) == ("jarvis", "Jarvis", 1.0, 0.6)
    assert event.timestamp == pytest.approx(3 * 512 / 16000)
    assert dict(event.scores) == {"alexa": 0.0, "jarvis": 1.0}
    assert backend.stats() == {"frames": 4, "detections": 1, "suppressed": 0}


def test_the_labels_its_events_can_carry_are_known_from_the_config(tmp_path):
    # what `magoo check` matches a profile's [responder.by_wake.LABEL] tables against
    own = tmp_path / "hey-magoo_en_linux_v1_9_0.ppn"
    own.write_bytes(b"")
    assert PorcupineDetector.labels(Config(keywords=["alexa"], keyword_paths=[own])) == ["alexa", "hey-magoo"]
    assert PorcupineDetector.labels(Config(keywords=["alexa", "jarvis"], labels=["Alexa", "Jarvis"])) == ["Alexa", "Jarvis"]


def test_porcupine_reports_no_scores_and_the_story_says_so_rather_than_invent_them():
    backend = started(FakeLibrary("1.9.5"), keywords=["alexa", "jarvis"])
    board = WakeScoreboard()
    for i in range(3):
        backend.process(frame := pcm(512, i * 512))
        assert backend.scores is None
        board.update(backend, frame)
    assert board.reports_scores is False and board.peaks() == []
    (line,) = no_wake_story(board, "[wake] porcupine")
    assert line.startswith("no wake word detected; [wake] porcupine reports no scores, so how near one came is unknown")


def test_keyword_files_are_named_by_the_part_before_the_first_underscore(tmp_path):
    ppn = tmp_path / "hey-magoo_en_linux_v1_9_0.ppn"
    ppn.write_bytes(b"ppn")
    fake = FakeLibrary("1.9.5", handle=FakeHandle(fire={0: 1}))
    backend = started(fake, keywords=["alexa"], keyword_paths=[str(ppn)], sensitivities=[0.5, 0.8])
    assert fake.calls[0]["keyword_paths"] == [FakeLibrary.builtin["alexa"], str(ppn)]
    event = backend.process(pcm(512))
    assert (event.model, event.label, event.threshold) == ("hey-magoo", "hey-magoo", 0.8)


def test_refractory_ignores_detections_within_its_audio_time():
    frame = 512 / 16000  # 32 ms
    fake = FakeLibrary("1.9.5", handle=FakeHandle(fire={0: 0, 10: 0, 31: 0, 40: 0}))
    backend = started(fake, refractory=1.0)
    fired = [i for i in range(45) if backend.process(pcm(512, i * 512)) is not None]
    # frame 10 is 0.32 s after frame 0: ignored; frame 31 is 0.992 s after: ignored; 40 is 1.28 s after
    assert fired == [0, 40]
    assert backend.stats()["suppressed"] == 2
    assert 40 * frame >= 1.0 > 31 * frame


def test_refractory_zero_reports_every_detection():
    fake = FakeLibrary("1.9.5", handle=FakeHandle(fire={0: 0, 1: 0}))
    backend = started(fake, refractory=0)
    assert [backend.process(pcm(512)) is not None for _ in range(2)] == [True, True]


def test_reset_drops_the_partial_frame_and_washes_porcupine_with_a_second_of_silence():
    fake = FakeLibrary("1.9.5")
    backend = started(fake)
    backend.process(pcm(300))
    backend.reset()
    washed = fake.handle.frames[:]
    assert len(washed) == 32 and all(not any(f) for f in washed)  # ceil(16000 / 512) silent frames
    backend.process(pcm(512, 1000))
    assert fake.handle.frames[-1] == list(range(1000, 1512)), "the 300 samples before reset() are gone"
    assert backend.stats()["frames"] == 1, "washing is not counted as heard audio"


def test_reset_before_start_does_nothing():
    backend = detector(FakeLibrary("1.9.5"))
    backend.reset()


def test_leaving_deletes_the_engine():
    fake = FakeLibrary("1.9.5")
    backend = started(fake)
    asyncio.run(backend.__aexit__(None, None, None))
    assert fake.handle.deleted
    asyncio.run(backend.__aexit__(None, None, None))  # twice is harmless


def test_leaving_waits_for_a_reset_in_flight_on_the_wake_worker():
    """The engine may leave while its wake worker still runs a queued reset(); delete() must wait."""

    class Slow(FakeHandle):
        def process(self, pcm):
            time.sleep(0.002)
            return super().process(pcm)  # raises once deleted, as a real handle would crash

    fake = FakeLibrary("1.9.5", handle=Slow())
    backend = started(fake)

    async def race() -> None:
        washing = asyncio.get_running_loop().run_in_executor(None, backend.reset)  # 32 frames, ~64 ms
        await asyncio.sleep(0.01)
        await backend.__aexit__(None, None, None)
        await washing

    asyncio.run(race())
    assert fake.handle.deleted and len(fake.handle.frames) == 32
    assert backend.process(pcm(512)) is None, "a frame still queued after leaving scores nothing"
    backend.reset()


def test_a_processing_error_of_generation_2_is_mapped(caplog):
    class Failing(FakeHandle):
        def process(self, pcm):
            raise PorcupineActivationError("Processing failed", [f"key {KEY} expired"])

    backend = started(FakeLibrary("4.0.3", handle=Failing()), access_key=KEY)
    with pytest.raises(BackendError) as caught:
        backend.process(silence(backend.input_format, 512 / 16000))
    assert caught.value.retryable and KEY not in caught.value.message


# ---- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({}, "at least one keyword"),
        ({"keywords": ["alexa", "jarvis"], "sensitivities": [0.5]}, "one per keyword"),
        ({"keywords": ["alexa"], "sensitivities": 1.5}, "less than or equal to 1"),
        ({"keywords": ["alexa"], "sensitivities": [-0.1]}, "greater than or equal to 0"),
        ({"keywords": ["alexa"], "labels": ["a", "b"]}, "labels has 2 values for 1 keywords"),
        ({"keywords": ["alexa"], "keyword_paths": ["alexa_linux.ppn"]}, "listed twice"),
        ({"keywords": ["alexa"], "refractory": -1}, "greater than or equal to 0"),
    ],
)
def test_config_mistakes_are_explained(config, words):
    with pytest.raises(ValidationError) as caught:
        Config.model_validate(config)
    assert words in str(caught.value)


def test_relative_keyword_paths_resolve_against_the_profile(tmp_path):
    for name in ("words/hey-magoo_en_linux.ppn", "lib/x.so"):
        (tmp_path / name).parent.mkdir()
        (tmp_path / name).write_bytes(b"")  # their contents are read when the detector starts
    config = Config.model_validate(
        {"keyword_paths": ["words/hey-magoo_en_linux.ppn"], "library_path": "lib/x.so"},
        context={"base_dir": tmp_path},
    )
    assert config.keyword_paths == [tmp_path / "words" / "hey-magoo_en_linux.ppn"]
    assert config.library_path == tmp_path / "lib" / "x.so"
    assert isinstance(config.keyword_paths[0], Path)
