"""The page in a real browser (headless Chromium from Debian, driven over the DevTools protocol):
it shows the state and the levels moving, and its "say" button makes the assistant speak, with
espeak-ng and mpv, on the virtual speaker of a private PulseAudio server.

Slow (a browser, a real TTS and player): one test, with the token flow of the page included.
"""

from __future__ import annotations

import numpy as np
import pytest

from magoo_core.testing.pytest_plugin import require_audio
import magoo_espeak
import magoo_mpv

from cdp import browser, chromium_missing
from web_helpers import TOKEN, running_engine

pytestmark = pytest.mark.usefixtures("virtual_audio")

#: a microphone that hums below the wake level (0.2): the input level and the wake score move, nothing wakes
HUMMING_MIC = {
    "backend": "scripted", "realtime": True, "loop": True,
    "segments": [{"seconds": 0.6, "tone": 440.0, "amplitude": 0.2}, {"seconds": 1.0}],
}


def loud_stretch(samples: np.ndarray, rate: int = 16000) -> float:
    """Seconds of 20 ms windows whose RMS is above -40 dBFS."""
    window = rate // 50
    frames = samples[: len(samples) // window * window].astype(np.float64).reshape(-1, window) / 32768.0
    return float(np.sum(np.sqrt(np.mean(frames**2, axis=1)) > 0.01) * 0.02)


async def test_the_page_shows_state_and_levels_and_its_say_button_speaks_on_the_speaker(virtual_audio, tmp_path):
    require_audio(chromium_missing())  # skipped without a browser; with MAGOO_REQUIRE_AUDIO=1 (CI) failed
    overrides = {"audio_source": HUMMING_MIC, "tts": {"backend": "espeak"}, "player": {"backend": "mpv"}}
    web = {"token": {"env": "MAGOO_WEB_TOKEN"}}
    async with running_engine(overrides, web, magoo_espeak, magoo_mpv, environ={"MAGOO_WEB_TOKEN": TOKEN}) as run, \
            browser(f"{run.url}?token={TOKEN}", tmp_path) as page:
        # the first load traded the token for the page's cookie: it is gone from the address bar
        await page.wait_for("document.getElementById('connection').textContent === 'connected'")
        assert await page.evaluate("location.href") == run.url
        assert TOKEN not in await page.evaluate("document.documentElement.outerHTML + document.cookie")

        # the state, and the levels moving: the input bar and the wake model's score against its threshold
        await page.wait_for("document.getElementById('state').textContent === 'listening'")
        seen = set()
        for _ in range(40):
            value = await page.wait_for("document.getElementById('input-value').dataset.rms")
            seen.add(round(float(value), 2))
            if len(seen) >= 3:
                break
            await page.evaluate("new Promise((r) => setTimeout(r, 100))")
        assert len(seen) >= 3 and max(seen) >= 0.05, f"the input level did not move: {seen}"
        wake = await page.wait_for("(() => { const v = document.querySelector('#wake-hey_magoo .value');"
                                   " return v && v.dataset.score > 0 ? v.textContent : null; })()")
        score, threshold = (float(part) for part in wake.split(" / "))
        assert 0 < score < threshold == 0.5
        assert float(await page.evaluate("document.getElementById('input-bar').getAttribute('aria-valuenow')")) > -60
        assert await page.evaluate("document.getElementById('clipping').hidden") is True
        backends = await page.evaluate(
            "[...document.querySelectorAll('#backends tr')].map((r) => [...r.cells].map((c) => c.textContent))")
        assert ["tts:espeak", "ok"] in backends and ["player:mpv", "ok"] in backends
        shot = await page.screenshot(tmp_path / "page.png")
        assert shot.startswith(b"\x89PNG") and len(shot) > 10_000

        # "say": typed into the box and clicked; the words come out of the virtual speaker
        with virtual_audio.record() as recording:
            recording.wait_for_data()
            before = len(recording.samples())
            await page.type("#say-text", "The tea is ready")
            await page.click("#say")
            result = await page.wait_for(
                "(() => { const t = document.getElementById('result').textContent; return t.includes(': ') ? t : null; })()",
                timeout=30)
            assert result == "Say “The tea is ready”: done (played)"
            heard = recording.samples()[before:]
        assert loud_stretch(heard) > 0.5, "the speaker's monitor heard no speech"
        assert run.engine.live.turns.turns() == []  # said outside a turn

        # "listen": a turn without the wake word, then in the last turns with its timeline
        await page.click("#listen")
        turn = await page.wait_for("document.querySelector('#turns li')?.innerText", timeout=30)
        lines = turn.splitlines()
        assert lines[0].startswith("Turn 1: ") and "Wake word: control (1.00)" in lines
        assert lines[-1].endswith(" ms") and "in all" in lines[-1], lines
        await page.screenshot(tmp_path / "page-after-a-turn.png")

        # the mute button: the engine mutes, and the page says so
        await page.click("#mute")
        await page.wait_for("!document.getElementById('muted').hidden")
        assert run.engine.control.muted is True
        assert await page.evaluate("document.getElementById('mute').getAttribute('aria-pressed')") == "true"
