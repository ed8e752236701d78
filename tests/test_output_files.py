"""Outputs never destroy what they point at: only regular files are written, and a failing write is
said once, then reminded of at a bounded pace (issue 17, section 4)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magoo_core.audio import tone
from magoo_core.default_plugins.fakes import EventLogActuator
from magoo_core.default_plugins.recorder import WavRecorderPlayer
from magoo_core.errors import BackendError
from magoo_core.monitor import Monitor
from magoo_core.output_files import OutputError, WriteFailures, check_target, open_for_append, write_atomically
from magoo_core.status import write_status_file
from magoo_core.systemd import Notifier
from magoo_core.testing import build_plugins, make_profile
from magoo_core.types import EngineStatus, State

EXAMPLES = int(os.environ.get("MAGOO_HOSTILE_EXAMPLES", "30"))
KINDS = ("absent", "file", "link to a file", "dangling link", "link to a folder", "fifo", "folder", "socket", "device")


def _make(kind: str, path: Path) -> object:
    """Put a ``kind`` at ``path``; returns what must still be there if magoo refuses it."""
    outside = path.parent / "outside"
    outside.mkdir(exist_ok=True)
    if kind == "file":
        path.write_bytes(b"old")
    elif kind == "link to a file":
        (outside / "target").write_bytes(b"precious")
        path.symlink_to(outside / "target")
    elif kind == "dangling link":
        path.symlink_to(outside / "missing")
    elif kind == "link to a folder":
        path.symlink_to(outside)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    elif kind == "device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # what /dev/full is
    return _snapshot(path)


def _snapshot(path: Path) -> object:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        target = Path(os.readlink(path))
        return ("link", str(target), target.read_bytes() if target.is_file() else None)
    return (stat.S_IFMT(info.st_mode), info.st_ino, path.read_bytes() if stat.S_ISREG(info.st_mode) else None)


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), data=st.binary(max_size=64))
def test_write_atomically_writes_a_regular_file_or_leaves_the_path_alone(tmp_path_factory, kind, data):
    folder = tmp_path_factory.mktemp("out")
    path = folder / "reply.wav"
    before = _make(kind, path)
    try:
        write_atomically(path, data)
    except OutputError:
        assert kind not in ("absent", "file")
        assert _snapshot(path) == before  # the link, the node or the folder is still what it was
        assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temporary left
        return
    assert kind in ("absent", "file")
    assert stat.S_ISREG(os.lstat(path).st_mode) and path.read_bytes() == data


@pytest.mark.parametrize("kind", ["link to a file", "fifo", "socket", "device", "folder"])
def test_open_for_append_refuses_what_is_not_a_regular_file_without_blocking(tmp_path, kind):
    path = tmp_path / "events.jsonl"
    before = _make(kind, path)
    with pytest.raises(OutputError, match="regular file"):
        open_for_append(path).close()  # a fifo without a reader would block an open for writing
    assert _snapshot(path) == before


def test_open_for_append_appends_to_a_regular_file(tmp_path):
    path = tmp_path / "logs" / "events.jsonl"
    for line in ("one\n", "two\n"):
        with open_for_append(path) as file:
            file.write(line)
    assert path.read_text() == "one\ntwo\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_new_file_is_0644_and_a_replaced_one_keeps_its_mode(tmp_path):
    new, kept = tmp_path / "new.json", tmp_path / "kept.json"
    kept.write_text("{}")
    kept.chmod(0o600)
    write_atomically(new, b"{}")
    write_atomically(kept, b"[]")
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_text() == "[]"


def test_the_refusal_says_what_is_there_and_what_to_do(tmp_path):
    link = tmp_path / "status.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(OutputError, match=r"symbolic link \(to .*elsewhere.json\).*give the link's target"):
        write_atomically(link, b"{}")
    with pytest.raises(OutputError, match="device node, not a regular file"):
        check_target("/dev/full")  # checked, never written


def test_a_path_may_not_lead_out_of_its_base_folder(tmp_path):
    base, outside = tmp_path / "base", tmp_path / "outside"
    base.mkdir()
    outside.mkdir()
    (base / "run").symlink_to(outside)
    with pytest.raises(OutputError, match="leads out of"):
        write_atomically(base / "run" / "status.json", b"{}", base=base)
    assert list(outside.iterdir()) == []
    write_atomically(base / "status.json", b"{}", base=base)


# ---- every writer goes through it ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["link to a file", "fifo", "device"])
def test_the_wav_player_does_not_replace_a_device_a_fifo_or_a_link(tmp_path, kind):
    path = tmp_path / "reply.wav"
    before = _make(kind, path)
    player = WavRecorderPlayer(WavRecorderPlayer.Config(path=path))

    async def play():
        async def audio():
            yield tone(440, 0.1, 16000)

        progress = type("P", (), {"started": lambda self: None, "played": lambda self, level, seconds: None})()
        await player.play(audio(), progress)

    with pytest.raises(BackendError, match="cannot write .*regular file"):
        asyncio.run(play())
    assert _snapshot(path) == before


@pytest.mark.parametrize("kind", ["link to a file", "fifo", "device"])
def test_the_status_file_is_not_written_onto_a_device_a_fifo_or_a_link(tmp_path, kind):
    path = tmp_path / "status.json"
    before = _make(kind, path)
    with pytest.raises(OutputError):
        write_status_file(path, {"state": "listening"})
    assert _snapshot(path) == before


@pytest.mark.parametrize("kind", ["link to a file", "fifo", "device"])
def test_the_log_actuator_does_not_write_to_a_device_a_fifo_or_a_link(tmp_path, kind):
    path = tmp_path / "events.jsonl"
    before = _make(kind, path)
    actuator = EventLogActuator(EventLogActuator.Config(path=path))

    async def start():
        async with actuator:
            pass

    done = threading.Event()

    def run():
        with pytest.raises(OutputError):
            asyncio.run(start())
        done.set()

    worker = threading.Thread(target=run, daemon=True)  # a blocking open on a fifo must not hang the suite
    worker.start()
    worker.join(30)
    assert done.is_set()
    assert _snapshot(path) == before


# ---- failing writes are said once, then reminded of --------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_failing_write_warns_once_then_reminds_at_most_every_ten_minutes(caplog):
    clock = _Clock()
    failures = WriteFailures("the status file", logging.getLogger("magoo.test"), clock=clock)
    error = OSError(28, "No space left on device")
    with caplog.at_level(logging.INFO, "magoo.test"):
        for _ in range(3600):  # an hour of failures, one a second
            failures.failed("/run/status.json", error)
            clock.now += 1
        failures.succeeded("/run/status.json")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 + 5 + 1, messages
    assert "the disk is full: free some space" in messages[0]
    assert "(3001 failures since the first)" in messages[-2]
    assert messages[-1] == "the status file /run/status.json is written again (after 3600 failures)"


def test_the_monitor_warns_once_about_a_status_folder_it_cannot_write(tmp_path, caplog):
    (tmp_path / "run").write_text("a file where the folder should be")
    plugins = build_plugins()
    profile = make_profile({"engine": {"status_file": str(tmp_path / "run" / "status.json")}}, plugins, base_dir=tmp_path)

    async def emit(event, **arguments):
        pass

    monitor = Monitor(profile, Notifier(None), lambda: EngineStatus(State.LISTENING, 0.0, 0, 0), lambda: 0.0, emit)

    async def write_many():
        for _ in range(50):
            await monitor._write_status_once(running=True)

    with caplog.at_level(logging.WARNING, "magoo.engine"):
        asyncio.run(write_many())
    warnings = [r.getMessage() for r in caplog.records if "status file" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"cannot write the status file {tmp_path / 'run' / 'status.json'}")


def test_the_event_log_is_private_and_a_full_disk_is_one_warning(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    actuator = EventLogActuator(EventLogActuator.Config(path=path))

    class FullDisk:
        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            pass

        def close(self):
            pass

    async def run():
        async with actuator:
            actuator.magoo_on_shutdown()
            actuator._file.close()
            actuator._file = FullDisk()
            for _ in range(100):
                actuator.magoo_on_shutdown()

    with caplog.at_level(logging.WARNING, "magoo.fakes"):
        asyncio.run(run())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds what people said
    assert path.read_text().count("shutdown") == 1
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == [f"cannot write the event log {path}: No space left on device; the disk is full: free some space; magoo goes on and retries"]
