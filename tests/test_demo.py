"""The offline demo (examples/demo.toml), run as the README's first command runs it: ``magoo run``
in a subprocess, with the real openWakeWord, pocketsphinx, espeak-ng, mpv and gpiozero mock pins.

Once without any sound output (mpv cannot start, the profile's backup records the reply to a
file), once with a speaker (the private PulseAudio server's null sink: mpv plays it there).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from magoo_core.audio import read_wav
from magoo_core.testing.virtual_audio import VirtualAudio, no_sound_environment

EXAMPLES = Path(__file__).parent.parent / "examples"


@pytest.fixture
def demo(tmp_path) -> Path:
    """examples/demo.toml and the audio it plays, copied to tmp_path: its output lands in tmp_path/out."""
    shutil.copytree(EXAMPLES / "audio", tmp_path / "audio")
    shutil.copy(EXAMPLES / "demo.toml", tmp_path / "demo.toml")
    return tmp_path / "demo.toml"


def run_demo(magoo, profile: Path, env: dict[str, str]) -> str:
    result = magoo("run", "--profile", profile, env=env, cwd=profile.parent, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def story_lines(stdout: str) -> list[str]:
    """The story's lines without their time stamps."""
    return [re.sub(r"^\[\s*[\d.]+s\] ", "", line) for line in stdout.splitlines()]


def assert_a_whole_offline_turn(lines: list[str], player: str, tts: str = "espeak") -> str:
    """The turn's steps in order, each from the real part; returns the reply's text."""
    steps = iter(lines)

    def next_line(pattern: str) -> re.Match:
        for line in steps:
            if match := re.fullmatch(pattern, line):
                return match
        raise AssertionError(f"no line matching {pattern!r} in order in:\n" + "\n".join(lines))

    next_line(
        rf"ready: audio_source wav → wake openwakeword → stt pocketsphinx → responder local → tts {tts}"
        rf" → player {player}; actuators: servo"
    )
    wake = next_line(r"turn 1: wake word 'hey_jarvis' \(score ([\d.]+), threshold 0\.50\)")
    assert float(wake.group(1)) >= 0.5
    next_line(r'turn 1: heard "what time is it"')  # pocketsphinx, with the demo's command grammar
    reply = next_line(r'turn 1: reply "(It is \d{1,2}:\d\d [AP]M\.)"').group(1)  # the local responder
    next_line(r"turn 1: sound started \(microphone muted\)")
    ended = next_line(r"turn 1: sound ended after ([\d.]+) s \((\d+) level updates, peak level ([\d.]+)\)")
    seconds, levels, peak = float(ended.group(1)), int(ended.group(2)), float(ended.group(3))
    assert 0.8 < seconds < 4.0 and levels >= 20 * seconds and peak > 0.05, ended.group(0)
    next_line(r"turn 1: ok — .*speech_end->first_audio \d+ ms")
    if player == "wav":
        next_line(r"turn 1: the reply \(([\d.]+) s\) is in out/reply-1\.wav")
    servo = next_line(
        r"turn 1: servo GPIO18: nodded; moved with the voice, (-?\d+)°–(-?\d+)° \((\d+) positions\);"
        r" (?:at rest|now) \(\d+°\)"
    )
    assert int(servo.group(2)) - int(servo.group(1)) >= 5 and int(servo.group(3)) >= 10, servo.group(0)
    next_line(r"stopping after 1 turn, 0 errors")
    return reply


def test_without_sound_output_the_demo_records_the_reply_it_spoke(magoo, demo, tmp_path):
    stdout = run_demo(magoo, demo, no_sound_environment(tmp_path))

    lines = story_lines(stdout)
    assert any(line.endswith("its backup wav runs instead") and "[player] mpv" in line for line in lines), stdout
    reply = assert_a_whole_offline_turn(lines, player="wav")
    # the file holds what espeak-ng says for that reply (the voice and speed of the demo and the backend default)
    recorded_format, recorded = read_wav(tmp_path / "out" / "reply-1.wav")
    reference = tmp_path / "reference.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(reference), reply], check=True, timeout=60)
    ref_format, ref_pcm = read_wav(reference)
    assert recorded_format.sample_rate == ref_format.sample_rate
    got, want = np.frombuffer(recorded, np.int16), np.frombuffer(ref_pcm, np.int16)
    assert abs(len(got) - len(want)) <= 0.02 * len(want)
    n = min(len(got), len(want))
    assert np.corrcoef(got[:n].astype(float), want[:n].astype(float))[0, 1] > 0.95


def test_the_piper_demo_speaks_the_reply_with_piper(magoo, tmp_path):
    shutil.copytree(EXAMPLES / "audio", tmp_path / "audio")
    shutil.copy(EXAMPLES / "demo-piper.toml", tmp_path / "demo-piper.toml")
    stdout = run_demo(magoo, tmp_path / "demo-piper.toml", no_sound_environment(tmp_path))

    assert_a_whole_offline_turn(story_lines(stdout), player="wav", tts="piper")
    recorded_format, recorded = read_wav(tmp_path / "out" / "reply-1.wav")
    assert recorded_format.sample_rate == 22050  # the voice's own rate, told to the player before the reply
    assert np.abs(np.frombuffer(recorded, np.int16)).max() > 3000


def test_with_a_speaker_the_demo_plays_the_reply_through_mpv(magoo, demo, virtual_audio: VirtualAudio):
    with virtual_audio.record() as recording:
        recording.wait_for_data()
        stdout = run_demo(magoo, demo, {})
        samples = recording.samples()

    lines = story_lines(stdout)
    assert not any("backup" in line for line in lines), stdout
    assert_a_whole_offline_turn(lines, player="mpv")
    assert not (demo.parent / "out").exists(), "nothing recorded to a file: it was played"
    loud = np.flatnonzero(np.abs(samples.astype(float)) > 1000)
    assert loud.size and (loud[-1] - loud[0]) / 16000 > 0.8, "the reply came out of the speaker"


def test_the_desk_profile_answers_a_live_microphone_through_the_speaker(magoo_process, virtual_audio: VirtualAudio):
    """examples/desk.toml as written: the command is spoken into the (virtual) microphone after the
    assistant said it is ready, and the reply comes out of the (virtual) speaker."""
    process = magoo_process("run", "--profile", EXAMPLES / "desk.toml", "--turns", "1", stdout=subprocess.PIPE)
    with virtual_audio.record() as recording:
        recording.wait_for_data()
        ready = process.stdout.readline()
        assert "ready: audio_source pyaudio → wake openwakeword" in ready, ready + process.stderr.read()
        virtual_audio.play(EXAMPLES / "audio" / "hey_jarvis_what_time_is_it.wav")
        stdout, stderr = process.communicate(timeout=60)
        samples = recording.samples()
    assert process.returncode == 0, ready + stdout + stderr
    lines = story_lines(ready + stdout)
    assert 'turn 1: heard "what time is it"' in lines, stdout
    assert any(re.fullmatch(r'turn 1: reply "It is \d{1,2}:\d\d [AP]M\."', line) for line in lines), stdout
    assert any(line.startswith("turn 1: ok") for line in lines), stdout
    loud = np.flatnonzero(np.abs(samples.astype(float)) > 1000)
    assert loud.size and (loud[-1] - loud[0]) / 16000 > 0.8, "the reply came out of the speaker"


def test_a_demo_whose_wake_word_is_never_said_tells_how_near_its_model_came(magoo, demo, tmp_path):
    """The demo with its wake model changed to one the recording does not say (alexa, not hey_jarvis):
    no turn, and the story says why instead of only 'stopping after 0 turns'."""
    text = demo.read_text()
    demo.write_text(text.replace('models = [{ name = "hey_jarvis", threshold = 0.5 }]', 'models = [{ name = "alexa", threshold = 0.5 }]'))
    assert 'name = "alexa"' in demo.read_text()
    lines = story_lines(run_demo(magoo, demo, no_sound_environment(tmp_path)))

    assert not any(line.startswith("turn ") for line in lines), lines
    peak = next((line for line in lines if line.startswith("no wake word detected: ")), None)
    match = re.fullmatch(r"no wake word detected: alexa peaked at ([\d.]+) \(threshold 0\.50\) at ([\d.]+) s of audio", peak or "")
    assert match, lines
    assert float(match.group(1)) < 0.25, "hey jarvis is nowhere near alexa"
    assert 1.0 < float(match.group(2)) < 6.5, "within the recording (1 s of lead silence, 3.6 s, 1.5 s of tail)"
    assert lines[-2].startswith("no wake word came near its threshold: check the microphone's level"), lines
    assert lines[-1] == "stopping after 0 turns, 0 errors"
