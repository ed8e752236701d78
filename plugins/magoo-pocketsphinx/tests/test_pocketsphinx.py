"""The pocketsphinx backend on real speech: exact commands, the full model's error rate,
endpointing, partials, continuous streams and a whole turn through the engine."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pydantic import ValidationError

from magoo_core.errors import BackendError, ProfileError
from magoo_core.plugins import create_plugin_manager
from magoo_core.profile import load_profile
from magoo_core.testing import TEST_PROFILE, run_profile
from magoo_core.testing.contracts import SpeechToTextContract
from magoo_core.types import AudioChunk, SpeechActivity, Transcript

import magoo_pocketsphinx
from magoo_pocketsphinx import PocketsphinxSpeechToText, commands_grammar
from pocketsphinx_helpers import (
    CLIP,
    COMMANDS,
    SPOKEN,
    chunks,
    espeak_clip,
    finals,
    items,
    measure_wer,
    quiet,
    shipped_clip,
    stream,
    word_errors,
)

GRAMMAR = {"commands": COMMANDS}


class TestPocketsphinxContract(SpeechToTextContract):
    backend_class = PocketsphinxSpeechToText
    config = GRAMMAR

    def utterance(self, fmt):
        return [AudioChunk(quiet(0.3) + shipped_clip() + quiet(1.0), fmt.sample_rate)]


def test_grammar_mode_is_exact_on_the_shipped_clip():
    found = items(GRAMMAR, quiet(0.3) + shipped_clip() + quiet(1.5))
    assert finals(found) == ["what time is it"]
    final = [i for i in found if isinstance(i, Transcript) and i.final][0]
    assert final.confidence is not None and 0 < final.confidence <= 1


async def turns_of_one_backend(config: dict, pcm: bytes, turns: int) -> tuple[list[list[str]], list[str]]:
    """The finals of ``turns`` streams through one started backend, as an assistant's turns are;
    and the decoder's cepstral mean after each."""
    heard, means = [], []
    async with PocketsphinxSpeechToText(PocketsphinxSpeechToText.Config.model_validate(config)) as stt:
        for _ in range(turns):
            async def audio():
                for piece in chunks(pcm):
                    yield piece
            heard.append(finals([item async for item in stt.transcribe(audio())]))
            means.append(await stt._call(stt._decoder.get_cmn))
    return heard, means


async def test_the_same_words_are_heard_the_same_way_turn_after_turn():
    pcm = quiet(0.3) + shipped_clip() + quiet(1.5)
    heard, means = await turns_of_one_backend(GRAMMAR, pcm, 5)
    assert heard == [["what time is it"]] * 5
    assert drift(means) < 0.5
    # what the default guards against: carried over, the mean drifts further with every quiet tail
    _, carried = await turns_of_one_backend({**GRAMMAR, "adapt_mean": True}, pcm, 5)
    assert drift(carried) > 2.0


def drift(means: list[str]) -> float:
    """The largest change of any cepstral mean component between the first and a later utterance."""
    vectors = np.array([[float(x) for x in mean.split(",")] for mean in means])
    return float(np.abs(vectors - vectors[0]).max())


@pytest.mark.parametrize("text", SPOKEN)
def test_grammar_mode_is_exact_on_espeak_commands(text):
    assert finals(items(GRAMMAR, quiet(0.3) + espeak_clip(text) + quiet(1.5))) == [text]


def test_a_jsgf_file_grammar(tmp_path):
    (tmp_path / "commands.gram").write_text(commands_grammar(COMMANDS))
    config = PocketsphinxSpeechToText.Config.model_validate({"grammar": "commands.gram"}, context={"base_dir": tmp_path})
    assert config.grammar == tmp_path / "commands.gram"
    found = items({"grammar": str(config.grammar)}, quiet(0.3) + espeak_clip("tell me a joke") + quiet(1.5))
    assert finals(found) == ["tell me a joke"]


def test_full_model_word_error_rate_is_reported():
    rate, heard = measure_wer()
    print(f"\npocketsphinx full language model: WER {rate:.2f} on {len(heard)} espeak-ng commands: {heard}")
    assert all(isinstance(text, str) for text in heard.values())
    assert any(heard.values()), "the full model heard nothing at all"
    assert rate < 1.0
    grammar_rate, _ = measure_wer(GRAMMAR)
    print(f"pocketsphinx command grammar: WER {grammar_rate:.2f}")
    assert grammar_rate == 0.0


def test_word_errors():
    assert word_errors("what time is it", "what time is it") == 0
    assert word_errors("what time is it", "what type it") == 2
    assert word_errors("tell me a joke", "") == 4
    assert word_errors("", "hello") == 1


def test_the_final_comes_at_the_end_of_speech_not_of_the_stream():
    results = asyncio.run(stream(GRAMMAR, quiet(0.3) + shipped_clip() + quiet(1.5)))
    kinds = [type(item).__name__ + ("/final" if getattr(item, "final", False) else "") for _, _, item in results]
    consumed, total, final = next(r for r in results if isinstance(r[2], Transcript) and r[2].final)
    assert final.text == "what time is it"
    assert consumed < total, f"the final came only after the whole stream ({consumed} of {total} chunks)"
    # 0.3 s + 0.96 s of words + end_silence 0.3 s: about 20 of 40 chunks, not the 1.5 s of silence
    assert consumed <= 24
    assert kinds[0] == "SpeechActivity"
    partials = [item for _, _, item in results if isinstance(item, Transcript) and not item.final]
    assert partials, "no partial transcript before the final"
    assert kinds.index("Transcript/final") > kinds.index("Transcript")
    assert "what time is it".startswith(partials[0].text)
    activity = [item.started for _, _, item in results if isinstance(item, SpeechActivity)]
    assert activity == [True, False]


def test_max_seconds_cuts_an_endless_utterance():
    # loud noise is speech to pocketsphinx's detector (Silero does not take it for speech)
    noise = (np.random.default_rng(7).normal(0, 6000, 16000 * 6)).clip(-32768, 32767).astype("<i2").tobytes()
    results = asyncio.run(stream({**GRAMMAR, "max_seconds": 1.0, "vad": "pocketsphinx"}, quiet(0.3) + noise))
    ends = [r for r in results if isinstance(r[2], Transcript) and r[2].final]
    assert len(ends) == 1
    consumed, total, _ = ends[0]
    assert consumed <= 22 < total  # 0.3 s + 1 s + the detector's 90 ms start: well before 6.3 s


def test_max_seconds_cuts_endless_speech_with_silero():
    speech = shipped_clip()[: 16000 * 2 * 9 // 10] * 5  # 4.5 s of words with no pause
    results = asyncio.run(stream({**GRAMMAR, "max_seconds": 1.0}, quiet(0.3) + speech))
    consumed, total, _ = next(r for r in results if isinstance(r[2], Transcript) and r[2].final)
    assert consumed <= 20 < total  # 0.3 s + 1 s and a few frames: well before 4.8 s


def test_silence_gives_one_empty_final():
    found = items(GRAMMAR, quiet(2.0))
    assert finals(found) == [""]
    assert not any(isinstance(i, SpeechActivity) for i in found)


def test_continuous_mode_gives_a_final_per_utterance():
    pcm = quiet(0.3) + shipped_clip() + quiet(1.2) + espeak_clip("tell me a joke") + quiet(1.2)
    found = items(GRAMMAR, pcm, continuous=True)
    assert finals(found) == ["what time is it", "tell me a joke"]
    assert [i.started for i in found if isinstance(i, SpeechActivity)] == [True, False, True, False]


def test_only_one_of_commands_grammar_and_lm():
    with pytest.raises(ValidationError, match="only one of"):
        PocketsphinxSpeechToText.Config.model_validate({"commands": ["hello"], "lm": "x.lm.bin"})
    with pytest.raises(ValidationError, match="without words"):
        PocketsphinxSpeechToText.Config.model_validate({"commands": ["hello", "?!"]})


def test_unknown_command_words_are_named_at_start():
    with pytest.raises(BackendError, match="xyzzyq") as caught:
        items({"commands": ["what time is it", "open xyzzyq"]}, quiet(0.1))
    assert not caught.value.retryable


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("grammar", "no.gram", "no file at"),
        ("lm", "no.lm.bin", "no file at"),
        ("dictionary", "no.dict", "no file at"),
        ("hmm", "no-model", "no folder at"),
        ("hmm", "commands.gram", "no folder at"),  # a file where the acoustic model's folder belongs
    ],
)
def test_a_missing_model_file_fails_at_load_naming_the_key_and_the_resolved_path(tmp_path, key, value, message):
    (tmp_path / "commands.gram").write_text(commands_grammar(COMMANDS))
    profile = tmp_path / "profile.toml"
    profile.write_text(f'[stt]\nbackend = "pocketsphinx"\n{key} = "{value}"\n')
    with pytest.raises(ProfileError) as caught:
        load_profile(profile, create_plugin_manager())
    [issue] = [issue for issue in caught.value.issues if issue.section == "[stt]"]  # not the rest of the profile
    assert issue.key == key
    assert issue.message.startswith(f"{message} {tmp_path / value}")


def test_a_whole_turn_through_the_engine():
    record = asyncio.run(
        run_profile(
            {
                "stt": {"backend": "pocketsphinx", "commands": COMMANDS},
                "audio_source": {  # the test profile's, with the spoken command instead of its tone
                    **TEST_PROFILE["audio_source"],
                    "segments": [*TEST_PROFILE["audio_source"]["segments"][:3], {"file": str(CLIP)}, {"seconds": 1.5}],
                },
            },
            plugins=[magoo_pocketsphinx],
        )
    )
    assert record.transcripts == ["what time is it"]
    assert record.replies == ["You said: what time is it"]
