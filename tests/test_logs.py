"""The log's formats and its masking of secrets (magoo_core.logs)."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest

from magoo_core.logs import setup_logging

SECRET = "sk-live-abcdef123456"


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def log_all(stream: io.StringIO, **options) -> list[str]:
    setup_logging("debug", stream=stream, secrets=[SECRET, "ab"], **options)
    log = logging.getLogger("magoo.test")
    log.debug("detail")
    log.info("key is %s", SECRET)
    log.warning("warned, at the table")
    try:
        raise RuntimeError(f"refused {SECRET}")
    except RuntimeError:
        log.exception("failed")
    return stream.getvalue().splitlines()


def test_text_for_a_terminal_with_secrets_masked_in_messages_and_tracebacks(restore_root):
    text = "\n".join(log_all(io.StringIO(), log_format="text"))
    assert "INFO    magoo.test: key is ****" in text
    assert "RuntimeError: refused ****" in text
    assert SECRET not in text
    assert "warned, at the table" in text  # a "secret" under 4 characters ("ab") masks nothing


def test_journal_lines_carry_their_priority(restore_root):
    lines = log_all(io.StringIO(), log_format="journal")
    assert lines[:4] == ["<7>magoo.test: detail", "<6>magoo.test: key is ****", "<4>magoo.test: warned, at the table", "<3>magoo.test: failed"]
    assert "RuntimeError: refused ****" in lines[-1]


def test_json_lines(restore_root):
    entries = [json.loads(line) for line in log_all(io.StringIO(), log_format="json")]
    assert [(e["level"], e["logger"], e["message"]) for e in entries] == [
        ("debug", "magoo.test", "detail"),
        ("info", "magoo.test", "key is ****"),
        ("warning", "magoo.test", "warned, at the table"),
        ("error", "magoo.test", "failed"),
    ]
    assert entries[-1]["exception"].endswith("RuntimeError: refused ****")
    assert entries[0]["time"].endswith("+00:00")


def test_auto_is_journal_when_stderr_is_the_journal(restore_root, tmp_path, monkeypatch):
    with open(tmp_path / "journal", "w") as journal:
        stat = os.fstat(journal.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        setup_logging("info", stream=journal)
        logging.getLogger("magoo.test").info("hello")
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino + 1}")  # someone else's stream
        setup_logging("info", stream=journal)
        logging.getLogger("magoo.test").info("again")
    lines = (tmp_path / "journal").read_text().splitlines()
    assert lines[0] == "<6>magoo.test: hello"
    assert lines[1].endswith("INFO    magoo.test: again") and not lines[1].startswith("<")


def test_setting_it_up_twice_does_not_double_the_lines(restore_root):
    stream = io.StringIO()
    setup_logging("info", stream=stream, log_format="text")
    setup_logging("info", stream=stream, log_format="text")
    logging.getLogger("magoo.test").info("once")
    assert stream.getvalue().count("once") == 1


@pytest.mark.parametrize("log_format", ["text", "journal", "json"])
def test_control_characters_from_outside_never_make_a_second_line(restore_root, log_format):
    stream = io.StringIO()
    setup_logging("info", stream=stream, log_format=log_format, secrets=[SECRET])
    log = logging.getLogger("magoo.test")
    forged = "a\n12:00:00 INFO    magoo.engine: forged\r<3>x\x1b[2J\u2028y\tz"
    log.info("%s: listening", forged)  # a profile's name, as the engine logs it
    log.info(f"heard {forged} {SECRET}")  # a careless plugin formats the text itself
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    if log_format == "json":
        lines = [json.loads(line)["message"] for line in lines]
    assert lines[0].endswith("a\\n12:00:00 INFO    magoo.engine: forged\\r<3>x\\x1b[2J\\u2028y\tz: listening")
    assert lines[1].endswith("\\u2028y\tz ****")
