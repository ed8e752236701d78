"""Behaviour of magoo_core.audio: conversion, buffers, levels, WAV and the capture hand-over."""

from __future__ import annotations

import asyncio
import struct
import threading

import numpy as np
import pytest

from magoo_core import audio, capture_queue
from magoo_core.testing import signals
from magoo_core.types import AudioChunk, AudioFormat

MONO_16K = AudioFormat(16000)


def dominant_frequency(chunk: AudioChunk) -> float:
    return signals.dominant_frequency(audio.samples(chunk)[:, 0], chunk.sample_rate)


def stereo(left: list[int], right: list[int], rate: int = 16000, timestamp: float = 0.0) -> AudioChunk:
    return audio.chunk_from_samples(np.array([left, right], dtype=np.int16).T, rate, timestamp)


def numbered(index: int) -> AudioChunk:
    return AudioChunk(struct.pack("<h", index % 32768), 16000)


def number_of(chunk: AudioChunk) -> int:
    return struct.unpack("<h", chunk.pcm)[0]


# ---- samples, mixing, levels --------------------------------------------------------------------


def test_samples_is_a_view_shaped_frames_by_channels():
    chunk = stereo([1, 2, 3], [4, 5, 6])
    data = audio.samples(chunk)
    assert data.shape == (3, 2)
    assert data.base is not None and not data.flags.writeable
    assert data.tolist() == [[1, 4], [2, 5], [3, 6]]


def test_chunk_from_samples_round_trip_and_rejects_other_dtypes():
    chunk = audio.chunk_from_samples(np.array([1, -2, 3], dtype=np.int16), 8000, timestamp=5.0)
    assert (chunk.channels, chunk.sample_rate, chunk.timestamp, chunk.frames) == (1, 8000, 5.0, 3)
    assert audio.samples(chunk)[:, 0].tolist() == [1, -2, 3]
    with pytest.raises(ValueError, match="int16"):
        audio.chunk_from_samples(np.array([0.5]), 8000)


def test_other_sample_widths_are_refused_clearly():
    with pytest.raises(ValueError, match="32-bit"):
        audio.samples(AudioChunk(bytes(8), 16000, sample_width=4))


def test_mix_to_mono_averages_without_overflow():
    chunk = stereo([32767, -32768, 100, 3], [32767, -32768, -100, 4], timestamp=2.0)
    mono = audio.mix_to_mono(chunk)
    assert mono.channels == 1 and mono.timestamp == 2.0
    assert audio.samples(mono)[:, 0].tolist() == [32767, -32768, 0, 4]  # 3.5 rounds to even


def test_mix_to_mono_picks_a_channel_and_names_a_missing_one():
    chunk = stereo([1, 2], [7, 8])
    assert audio.samples(audio.mix_to_mono(chunk, channel=1))[:, 0].tolist() == [7, 8]
    with pytest.raises(ValueError, match="channel 2 does not exist.*2 channel"):
        audio.mix_to_mono(chunk, channel=2)


def test_mix_to_mono_returns_mono_input_itself():
    chunk = audio.tone(440, 0.01, 16000)
    assert audio.mix_to_mono(chunk) is chunk


def test_levels_of_a_known_sine_and_of_nothing():
    sine = audio.tone(1000, 1.0, 16000, amplitude=0.5)
    assert audio.rms_level(sine) == pytest.approx(0.5 / np.sqrt(2), abs=1e-3)
    assert audio.peak_level(sine) == pytest.approx(0.5, abs=1e-3)
    empty = AudioChunk(b"", 16000)
    assert audio.rms_level(empty) == 0.0 and audio.peak_level(empty) == 0.0
    assert audio.peak_level(stereo([0, 0], [0, -32768])) == 1.0


def test_tone_phase_samples_make_a_continuous_tone():
    whole = audio.tone(440, 0.1, 16000, amplitude=0.3)
    parts = [audio.tone(440, 0.025, 16000, amplitude=0.3, phase_samples=i * 400) for i in range(4)]
    assert b"".join(p.pcm for p in parts) == whole.pcm


def test_silence_has_the_right_length_and_format():
    chunk = audio.silence(AudioFormat(8000, 2), 0.25, timestamp=3.0)
    assert (chunk.frames, chunk.channels, chunk.timestamp) == (2000, 2, 3.0)
    assert chunk.pcm == bytes(8000)


# ---- resampling ---------------------------------------------------------------------------------


def resample_in_pieces(chunk: AudioChunk, sizes: list[int], target_rate: int) -> AudioChunk:
    resampler = audio.Resampler(chunk.sample_rate, target_rate)
    out, start, index = [], 0, 0
    while start < chunk.frames:
        size = sizes[index % len(sizes)]
        piece = AudioChunk(chunk.pcm[2 * start : 2 * (start + size)], chunk.sample_rate)
        out.append(resampler.process(piece))
        start, index = start + size, index + 1
    out.append(resampler.flush())
    return audio.concatenate(out, AudioFormat(target_rate))


def test_resampling_keeps_frequency_and_length():
    source = audio.tone(1000, 1.0, 48000, amplitude=0.5)
    result = resample_in_pieces(source, [48000], 16000)
    assert result.sample_rate == 16000
    assert result.frames == pytest.approx(16000, rel=0.01)
    assert dominant_frequency(result) == pytest.approx(1000, abs=2)
    assert audio.rms_level(result) == pytest.approx(audio.rms_level(source), rel=0.02)


def test_streamed_resampling_in_odd_pieces_equals_one_shot():
    source = audio.tone(1000, 1.0, 48000, amplitude=0.5)
    one_shot = audio.samples(resample_in_pieces(source, [48000], 16000))[:, 0].astype(int)
    streamed = audio.samples(resample_in_pieces(source, [1, 333, 4801, 17], 16000))[:, 0].astype(int)
    assert len(streamed) == len(one_shot)
    assert np.max(np.abs(streamed - one_shot)) <= 2


def test_resampler_early_output_may_be_empty_and_keeps_timestamps():
    resampler = audio.Resampler(48000, 16000)
    first = resampler.process(audio.tone(1000, 0.001, 48000, timestamp=7.0))
    assert first.sample_rate == 16000 and first.timestamp == 7.0
    assert first.frames < 16
    tail = resampler.flush()
    assert tail.frames > 0 and tail.timestamp == 7.0


def test_resampler_same_rate_passes_through_and_checks_format():
    resampler = audio.Resampler(16000, 16000)
    chunk = audio.tone(440, 0.01, 16000)
    assert resampler.process(chunk) is chunk
    assert resampler.flush().frames == 0
    with pytest.raises(ValueError, match="16000 Hz, 1 ch"):
        resampler.process(audio.tone(440, 0.01, 8000))


def test_resampler_handles_stereo():
    left = audio.samples(audio.tone(500, 0.5, 48000))[:, 0]
    chunk = audio.chunk_from_samples(np.stack([left, np.zeros_like(left)], axis=1), 48000)
    resampler = audio.Resampler(48000, 24000, channels=2)
    result = audio.concatenate([resampler.process(chunk), resampler.flush()], AudioFormat(24000, 2))
    data = audio.samples(result)
    assert result.frames == pytest.approx(12000, rel=0.01)
    assert np.abs(data[:, 1]).max() <= 2 and np.abs(data[:, 0]).max() > 10000  # soxr dithers int16


# ---- rechunking ---------------------------------------------------------------------------------


def ramp(frames: int, timestamp: float, start: int = 0, rate: int = 1000) -> AudioChunk:
    return audio.chunk_from_samples(np.arange(start, start + frames, dtype=np.int16), rate, timestamp)


def test_rechunker_sizes_remainder_and_order():
    rechunker = audio.Rechunker(4)
    assert rechunker.push(ramp(3, 10.0)) == []
    assert rechunker.pending_frames == 3
    out = rechunker.push(ramp(7, 20.0, start=3))
    assert [c.frames for c in out] == [4, 4]
    assert np.concatenate([audio.samples(c)[:, 0] for c in out]).tolist() == list(range(8))
    assert rechunker.pending_frames == 2
    (rest,) = rechunker.flush()
    assert audio.samples(rest)[:, 0].tolist() == [8, 9]
    assert rechunker.flush() == []


def test_rechunker_timestamps_are_the_last_frame_capture_times():
    rechunker = audio.Rechunker(4)  # rate 1000 Hz: one frame per millisecond
    rechunker.push(ramp(3, 10.0))
    out = rechunker.push(ramp(7, 20.0, start=3))
    # the input's last frame (index 6 of 7) is at 20.0; the first output ends at input frame 0
    assert out[0].timestamp == pytest.approx(20.0 - 0.006)
    assert out[1].timestamp == pytest.approx(20.0 - 0.002)
    assert rechunker.flush()[0].timestamp == pytest.approx(20.0)


def test_rechunker_flush_pads_to_a_full_frame_and_reset_forgets():
    rechunker = audio.Rechunker(4)
    rechunker.push(ramp(2, 5.0, start=1))
    (padded,) = rechunker.flush(pad=True)
    assert audio.samples(padded)[:, 0].tolist() == [1, 2, 0, 0]
    assert padded.timestamp == pytest.approx(5.002)
    rechunker.push(ramp(2, 5.0))
    rechunker.reset()
    assert rechunker.flush(pad=True) == []


def test_rechunker_refuses_a_format_change_while_holding_a_remainder():
    rechunker = audio.Rechunker(4)
    rechunker.push(ramp(2, 0.0))
    with pytest.raises(ValueError, match="re-chunk"):
        rechunker.push(ramp(2, 0.0, rate=2000))


# ---- converter ----------------------------------------------------------------------------------


def test_converter_fast_path_returns_the_same_object():
    converter = audio.AudioConverter(MONO_16K)
    chunk = audio.tone(440, 0.08, 16000)
    assert converter.convert(chunk)[0] is chunk
    assert converter.flush() == []


def test_converter_mixes_resamples_and_rechunks():
    converter = audio.AudioConverter(MONO_16K, frame_samples=1280)
    left = audio.samples(audio.tone(1000, 1.0, 48000, amplitude=0.5))[:, 0]
    source = audio.chunk_from_samples(np.stack([left, left], axis=1), 48000)
    out = []
    for piece in audio.split(source, 1000):
        out += converter.convert(piece)
    out += converter.flush(pad=True)
    assert all(c.format == MONO_16K and c.frames == 1280 for c in out)
    total = sum(c.frames for c in out)
    assert 16000 <= total < 16000 + 1280
    whole = audio.concatenate(out, MONO_16K)
    assert dominant_frequency(whole) == pytest.approx(1000, abs=2)


def test_converter_picks_the_requested_channel():
    converter = audio.AudioConverter(MONO_16K, channel=1)
    (out,) = converter.convert(stereo([1, 2], [9, 8]))
    assert audio.samples(out)[:, 0].tolist() == [9, 8]


def test_converter_keeps_a_matching_multichannel_layout():
    converter = audio.AudioConverter(AudioFormat(16000, 2))
    out = converter.convert(stereo([1, 2], [3, 4], rate=48000)) + converter.flush()
    assert {c.channels for c in out} == {2}
    with pytest.raises(ValueError, match="only mono output"):
        audio.AudioConverter(AudioFormat(16000, 2)).convert(audio.tone(440, 0.01, 16000))


def test_converter_follows_a_rate_change_mid_stream():
    converter = audio.AudioConverter(MONO_16K)
    out = converter.convert(audio.tone(440, 0.5, 48000))
    out += converter.convert(audio.tone(440, 0.5, 8000))
    out += converter.flush()
    assert {c.sample_rate for c in out} == {16000}
    assert sum(c.frames for c in out) == pytest.approx(16000, rel=0.01)


def test_one_shot_convert():
    result = audio.convert(audio.tone(1000, 0.5, 44100), MONO_16K)
    assert result.format == MONO_16K
    assert result.frames == pytest.approx(8000, rel=0.01)


# ---- ring buffer --------------------------------------------------------------------------------


def test_ring_buffer_keeps_the_newest_seconds():
    ring = audio.RingBuffer(1.0)
    chunks = [audio.silence(MONO_16K, 0.08, timestamp=i) for i in range(100)]
    for chunk in chunks:
        ring.append(chunk)
    assert len(ring) == 12  # 12 × 80 ms = 0.96 s; a 13th would exceed 1 s
    assert ring.duration == pytest.approx(0.96)
    assert ring.chunks() == chunks[-12:]
    ring.clear()
    assert len(ring) == 0 and ring.duration == 0.0


def test_ring_buffer_never_drops_the_newest_chunk():
    ring = audio.RingBuffer(0.5)
    ring.append(audio.silence(MONO_16K, 0.1))
    big = audio.silence(MONO_16K, 2.0)
    ring.append(big)
    assert ring.chunks() == [big]


# ---- WAV ----------------------------------------------------------------------------------------


def test_wav_round_trip_from_chunks_and_bytes(tmp_path):
    fmt = AudioFormat(22050, 2)
    chunk = stereo([1, 2, 3], [4, 5, 6], rate=22050)
    path = audio.write_wav(tmp_path / "deep" / "dir" / "x.wav", [chunk, chunk], fmt)
    assert audio.read_wav(path) == (fmt, chunk.pcm * 2)
    audio.write_wav(path, chunk.pcm, fmt)
    assert audio.read_wav(path) == (fmt, chunk.pcm)
    assert [p.name for p in path.parent.iterdir()] == ["x.wav"]  # no temporary file left behind


def test_write_wav_refuses_chunks_of_another_format(tmp_path):
    with pytest.raises(ValueError, match="cannot join"):
        audio.write_wav(tmp_path / "x.wav", [audio.tone(440, 0.01, 8000)], MONO_16K)
    assert list(tmp_path.iterdir()) == []


def test_read_wav_errors_name_the_file(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        audio.read_wav(missing)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match="junk.wav"):
        audio.read_wav(junk)
    eight_bit = tmp_path / "eight.wav"
    import wave

    with wave.open(str(eight_bit), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes(bytes(10))
    with pytest.raises(ValueError, match="eight.wav: 8-bit"):
        audio.read_wav(eight_bit)


def wav_header(fmt: AudioFormat, riff_size: int, data_size: int, extra: bytes = b"", tag: int = 1, bits: int = 16) -> bytes:
    fmt_body = struct.pack(
        "<HHIIHH", tag, fmt.channels, fmt.sample_rate, fmt.sample_rate * fmt.frame_bytes, fmt.frame_bytes, bits
    )
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
        + extra
        + b"data" + struct.pack("<I", data_size)
    )


def test_wav_stream_decoder_with_split_header_and_placeholder_sizes():
    fmt = AudioFormat(24000, 2)
    list_chunk = b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"  # odd size: padded to even
    pcm = stereo(list(range(100)), list(range(100, 200)), rate=24000).pcm
    stream = wav_header(fmt, 0xFFFFFFFF, 0xFFFFFFFF, extra=list_chunk) + pcm
    decoder = audio.WavStreamDecoder()
    out = []
    for start in range(0, len(stream), 7):  # 7 bytes at a time: header and frames split everywhere
        chunk = decoder.feed(stream[start : start + 7])
        if chunk is not None:
            assert chunk.format == fmt and len(chunk.pcm) % fmt.frame_bytes == 0
            out.append(chunk)
    assert b"".join(c.pcm for c in out) == pcm
    assert decoder.format == fmt


def test_wav_stream_decoder_with_zero_sizes_in_one_piece():
    pcm = audio.tone(440, 0.01, 16000).pcm
    chunk = audio.WavStreamDecoder().feed(wav_header(MONO_16K, 0, 0) + pcm)
    assert chunk is not None and chunk.pcm == pcm


def test_wav_stream_decoder_refuses_what_it_cannot_play():
    with pytest.raises(ValueError, match="not PCM"):
        audio.WavStreamDecoder().feed(wav_header(MONO_16K, 0, 0, tag=3, bits=32))
    with pytest.raises(ValueError, match="24-bit"):
        audio.WavStreamDecoder().feed(wav_header(MONO_16K, 0, 0, bits=24))
    with pytest.raises(ValueError, match="RIFF"):
        audio.WavStreamDecoder().feed(b"ID3\x04" + bytes(20))


# ---- capture queue ------------------------------------------------------------------------------


async def test_producer_never_blocks_while_the_consumer_is_stalled():
    queue = capture_queue.CaptureQueue(maxsize=50)
    stall = asyncio.Event()

    async def stalled_consumer():
        await stall.wait()  # never set during the test: the consumer is stuck
        await queue.get()

    consumer = asyncio.create_task(stalled_consumer())
    await asyncio.sleep(0)
    producer = threading.Thread(target=lambda: [queue.put(numbered(i)) for i in range(10_000)])
    producer.start()
    producer.join(timeout=30)
    assert not producer.is_alive()
    assert queue.pushed == 10_000
    assert queue.dropped == 10_000 - 50
    assert queue.delivered == 0
    assert [number_of(queue._chunks[i]) for i in range(len(queue))] == list(range(9950, 10_000))
    consumer.cancel()


async def test_producer_never_blocks_while_a_get_is_waiting_on_a_stalled_loop():
    queue = capture_queue.CaptureQueue(maxsize=8)
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0)  # the consumer now waits inside get()
    producer = threading.Thread(target=lambda: [queue.put(numbered(i)) for i in range(10_000)])
    producer.start()
    producer.join(timeout=30)  # the loop does not run while we join: the consumer is stalled
    assert not producer.is_alive()
    assert number_of(await waiting) == 10_000 - 8
    assert queue.dropped == 10_000 - 8
    assert [number_of(await queue.get()) for _ in range(7)] == list(range(10_000 - 7, 10_000))


async def test_counters_add_up_with_a_concurrent_consumer():
    queue = capture_queue.CaptureQueue(maxsize=16)
    received: list[int] = []

    async def consume():
        async for chunk in queue:
            received.append(number_of(chunk))
            if len(received) % 50 == 0:
                await asyncio.sleep(0.001)  # fall behind now and then so some chunks drop

    consumer = asyncio.create_task(consume())
    producer = threading.Thread(target=lambda: [queue.put(numbered(i)) for i in range(5000)])
    producer.start()
    while producer.is_alive():
        await asyncio.sleep(0.001)
    queue.close()
    await asyncio.wait_for(consumer, timeout=30)
    assert queue.pushed == 5000
    assert queue.pushed == queue.delivered + queue.dropped + len(queue)
    assert queue.delivered == len(received) and len(queue) == 0
    assert received == sorted(received) and received[-1] == 4999


async def test_get_wakes_when_a_thread_puts_later():
    queue = capture_queue.CaptureQueue(maxsize=4)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    threading.Timer(0.01, queue.put, args=(numbered(42),)).start()
    assert number_of(await asyncio.wait_for(getter, timeout=30)) == 42
    assert queue.delivered == 1


async def test_close_drains_then_ends_iteration_and_ignores_later_puts():
    queue = capture_queue.CaptureQueue(maxsize=4)
    queue.put(numbered(1))  # before any loop is bound
    queue.close()
    queue.put(numbered(2))
    assert [number_of(c) async for c in queue] == [1]
    with pytest.raises(capture_queue.QueueClosed):
        await queue.get()
    assert queue.pushed == 1


async def test_close_from_a_thread_wakes_a_waiting_iteration():
    queue = capture_queue.CaptureQueue(maxsize=4)

    async def collect():
        return [number_of(c) async for c in queue]

    collector = asyncio.create_task(collect())
    await asyncio.sleep(0.01)
    threading.Thread(target=lambda: (queue.put(numbered(5)), queue.close())).start()
    assert await asyncio.wait_for(collector, timeout=30) == [5]


async def test_close_with_an_error_raises_it_after_the_audio_already_queued():
    queue = capture_queue.CaptureQueue(maxsize=4)
    received = []

    async def consume():
        async for chunk in queue:
            received.append(number_of(chunk))

    consumer = asyncio.create_task(consume())
    threading.Thread(target=lambda: (queue.put(numbered(7)), queue.close(RuntimeError("device lost")))).start()
    with pytest.raises(RuntimeError, match="device lost"):
        await asyncio.wait_for(consumer, timeout=30)
    assert received == [7]
    queue.close(RuntimeError("a second close does not replace the first error"))
    with pytest.raises(RuntimeError, match="device lost"):
        await queue.get()


def test_capture_queue_is_still_importable_from_audio():
    """It moved to magoo_core.capture_queue; plugins written before import it from magoo_core.audio."""
    assert (audio.CaptureQueue, audio.QueueClosed) == (capture_queue.CaptureQueue, capture_queue.QueueClosed)
