"""The mpv player's test fixture: real speech as WAV and MP3 files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from magoo_core.audio import write_wav
from magoo_core.types import AudioFormat

from mpv_helpers import RATE, reference


@pytest.fixture(scope="session")
def speech_files(tmp_path_factory) -> dict[str, Path]:
    """The reference as WAV and as MP3 (lame, 48 kbit/s)."""
    if shutil.which("lame") is None:
        pytest.fail("lame is not installed; run scripts/setup.sh (it installs the Debian package 'lame')")
    folder = tmp_path_factory.mktemp("speech")
    wav = write_wav(folder / "speech.wav", reference().tobytes(), AudioFormat(RATE))
    mp3 = folder / "speech.mp3"
    subprocess.run(["lame", "--quiet", "-b", "48", str(wav), str(mp3)], check=True, timeout=60)
    return {"wav": wav, "mp3": mp3}
