"""``magoo doctor``'s rows for pocketsphinx, on real files: the grammar there or not, the wheel's model."""

from __future__ import annotations

from pathlib import Path

import pocketsphinx

from magoo_core.doctor import Result
from magoo_pocketsphinx import PocketsphinxSpeechToText, commands_grammar

MODEL = Path(pocketsphinx.get_model_path())


def rows_of(**config) -> list:
    return PocketsphinxSpeechToText.doctor(PocketsphinxSpeechToText.Config(**config), "[stt]")


def test_a_grammar_file_and_the_wheels_acoustic_model_are_found(tmp_path):
    grammar = tmp_path / "commands.gram"
    grammar.write_text(commands_grammar(["what time is it"]))
    row, *_ = rows_of(grammar=grammar)
    assert (row.check, row.result) == ("[stt] pocketsphinx", Result.OK)
    assert row.found == f"grammar {grammar}; acoustic model {MODEL / 'en-us' / 'en-us'}"


def test_commands_need_no_file():
    row, *_ = rows_of(commands=["hello", "what time is it"])
    assert row.result is Result.OK and row.found.startswith("a grammar of 2 commands")


def test_missing_files_are_one_fail_row_naming_each(tmp_path):
    row, *_ = rows_of(grammar=tmp_path / "commands.gram", dictionary=tmp_path / "words.dict")
    assert (row.check, row.result) == ("[stt] pocketsphinx", Result.FAIL)
    assert row.found == f"missing: dictionary {tmp_path / 'words.dict'}, grammar {tmp_path / 'commands.gram'}"
    assert row.fix == "fix dictionary, grammar in [stt]"


def test_silero_end_of_speech_has_its_own_row():
    decoder, vad = rows_of(commands=["hello"])
    assert (vad.check, vad.result) == ("[stt] end of speech", Result.OK)
    assert vad.found.startswith("Silero VAD, model ") and vad.found.endswith(
        "ends an utterance after 0.3 s of silence, 1 s after unfinished words"
    )
    (only,) = rows_of(commands=["hello"], vad="pocketsphinx", end_silence=0.6)
    assert only.check == "[stt] pocketsphinx"
