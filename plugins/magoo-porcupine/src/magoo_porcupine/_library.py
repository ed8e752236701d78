"""The installed pvporcupine, whichever API generation it is, and its errors as BackendError.

Generation 1 (pvporcupine 1.x, Apache-2.0) needs no AccessKey. Generation 2 and later need a
Picovoice AccessKey, which the library checks online. 1.x picks its native library by reading
the CPU part from /proc/cpuinfo when it is *imported*, and fails to import on CPUs it does not
know (a Raspberry Pi 5); :func:`load_library` then loads its binding by hand when the profile
names a ``library_path``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magoo_core import BackendError, require

BACKEND = "porcupine"
INSTALL = "uv pip install magoo-porcupine 'pvporcupine==1.9.5'"
KEY_HELP = (
    'get an AccessKey at console.picovoice.ai and set access_key = { env = "PV_ACCESS_KEY" } in [wake] '
    "(with PV_ACCESS_KEY exported or in the profile's .env), or install pvporcupine==1.9.5 "
    "(Apache-2.0), which needs no AccessKey"
)


@dataclass(frozen=True)
class Library:
    """What the detector uses of an installed pvporcupine.

    :param create: the factory. It is called with the keyword arguments ``keyword_paths``,
        ``sensitivities``, ``library_path`` and ``model_path`` and, from generation 2 on,
        ``access_key``, and returns an object with ``process(pcm) -> int``, ``frame_length``,
        ``sample_rate`` and ``delete()``.
    :param version: the package's version (``"1.9.5"``).
    :param keyword_paths: built-in keyword name -> its .ppn file for this platform.
    """

    create: Callable[..., Any]
    version: str
    keyword_paths: Mapping[str, str] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        """The API generation: the major version (1, or 2 and later with an AccessKey)."""
        major = self.version.split(".", 1)[0]
        return int(major) if major.isdigit() else 1

    @property
    def needs_access_key(self) -> bool:
        return self.generation >= 2


def load_library(library_path: Path | None = None) -> Library:
    """Import pvporcupine (blocking: it may read /proc/cpuinfo and load a shared library).

    :param library_path: the profile's override, used to load 1.x by hand when its CPU
        detection fails on import.
    :raises MissingDependency: pvporcupine is not installed.
    :raises BackendError: 1.x does not recognise the CPU and no ``library_path`` was given.
    """
    try:
        version: str | None = importlib.metadata.version("pvporcupine")
    except importlib.metadata.PackageNotFoundError:
        version = None
    try:
        module = require("pvporcupine", backend=BACKEND, install=INSTALL)
    except (NotImplementedError, RuntimeError) as exc:  # 1.x: "Unsupported platform." / "Unsupported CPU."
        if library_path is None:
            raise BackendError(
                f"pvporcupine {version or '1.x'} does not recognise this CPU ({cpu_part()}; "
                f"it says: {first_line(exc)}). A Raspberry Pi 5 is not in its list: set [wake] library_path "
                "to one of its bundled libraries, e.g. the Raspberry Pi 4 one "
                f"({bundled_library_hint()}), or install pvporcupine 2 or later with an AccessKey",
                retryable=False,
            ) from None
        return load_v1_by_hand(library_path, version or "1")
    if version is None:  # vendored without metadata: the signature tells the generation
        version = "2" if "access_key" in inspect.signature(module.create).parameters else "1"
    return Library(module.create, version, dict(getattr(module, "KEYWORD_PATHS", {})))


def load_v1_by_hand(library_path: Path, version: str) -> Library:
    """Load pvporcupine 1.x's binding without running its package ``__init__`` (CPU detection).

    Built-in keywords come from the keyword folder of the platform whose bundled library
    ``library_path`` is (``lib/raspberry-pi/...`` -> ``resources/keyword_files/raspberry-pi``);
    for a library outside the package, only ``keyword_paths`` work.
    """
    spec = importlib.util.find_spec("pvporcupine")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"pvporcupine is not installed. Install it with: {INSTALL}", retryable=False)
    package = Path(next(iter(spec.submodule_search_locations)))
    binding_spec = importlib.util.spec_from_file_location("magoo_porcupine._pvporcupine_v1", package / "porcupine.py")
    if binding_spec is None or binding_spec.loader is None or not (package / "porcupine.py").is_file():
        raise BackendError(
            f"pvporcupine {version} at {package} has no porcupine.py; library_path works only with 1.x",
            retryable=False,
        )
    binding = importlib.util.module_from_spec(binding_spec)
    binding_spec.loader.exec_module(binding)

    keyword_paths: dict[str, str] = {}
    try:
        platform = Path(library_path).resolve().relative_to((package / "lib").resolve()).parts[0]
    except ValueError:
        platform = None
    folder = package / "resources" / "keyword_files" / platform if platform else None
    if folder is not None and folder.is_dir():
        keyword_paths = {ppn.name.split("_")[0]: str(ppn) for ppn in sorted(folder.glob("*.ppn"))}
    default_library = str(library_path)
    default_model = str(package / "lib" / "common" / "porcupine_params.pv")

    def create(
        *,
        keyword_paths: Sequence[str],
        sensitivities: Sequence[float],
        library_path: str | None = None,
        model_path: str | None = None,
    ) -> Any:
        return binding.Porcupine(
            library_path=library_path or default_library,
            model_path=model_path or default_model,
            keyword_paths=list(keyword_paths),
            sensitivities=list(sensitivities),
        )

    return Library(create, version, keyword_paths)


# ---- errors -------------------------------------------------------------------------------------


def translate(exc: BaseException, library: Library, secret: str | None) -> BackendError | None:
    """The BackendError for a failure of pvporcupine we understand, else None (a bug: re-raise it).

    The message never contains ``secret`` (the AccessKey), even where pvporcupine's does.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    detail = redact(describe(exc), secret)
    version = f"pvporcupine {library.version}"
    if "PorcupineError" in names:  # generation 2 and later
        if "PorcupineActivationLimitError" in names:
            return BackendError(
                "Picovoice refused the AccessKey: it has reached its activation limit (every device "
                "and reinstall counts). Free activations at console.picovoice.ai, use another AccessKey, "
                "or install pvporcupine==1.9.5, which needs none",
                retryable=False,
            )
        if "PorcupineActivationThrottledError" in names:
            return BackendError(
                "Picovoice is throttling activations of this AccessKey (too many starts); will try again later",
                retryable=True,
            )
        if "PorcupineActivationRefusedError" in names:
            return BackendError(
                "Picovoice refused the AccessKey (revoked, expired or not valid for Porcupine): check it "
                "at console.picovoice.ai, or install pvporcupine==1.9.5, which needs none",
                retryable=False,
            )
        if "PorcupineActivationError" in names:
            return BackendError(
                f"{version} could not activate the AccessKey with Picovoice ({detail}); Porcupine 2 and "
                "later check the key online at the first start and every few weeks: check the network",
                retryable=True,
            )
        if "PorcupineInvalidArgumentError" in names:
            return BackendError(
                f"{version} rejected its settings ({detail}): a malformed AccessKey, or a .ppn keyword or "
                "model file made for another Porcupine version, language or platform",
                retryable=False,
            )
        if "PorcupineIOError" in names:
            return BackendError(f"{version} could not read a file it needs ({detail})", retryable=False)
        if "PorcupineKeyError" in names:
            return BackendError(f"{version} found a keyword or model file it cannot use ({detail})", retryable=False)
        transient = bool(names & {"PorcupineMemoryError", "PorcupineRuntimeError"})
        return BackendError(f"{version} failed: {detail}", retryable=transient)
    if isinstance(exc, OSError):  # a missing or foreign file, or a native library that does not load
        hint = (
            "; on a board pvporcupine does not recognise, set library_path to a bundled library that runs on it"
            if "libpv_porcupine" in detail or "shared object" in detail or "ELF" in detail
            else "; check keyword_paths, model_path and library_path"
        )
        return BackendError(f"{version} could not open a file it needs ({detail}){hint}", retryable=False)
    if isinstance(exc, ValueError):
        if library.generation == 1:
            return BackendError(
                f"{version} rejected its settings{f' ({detail})' if detail else ''}: every .ppn file must be "
                "made for Porcupine 1.9 and this platform (files from today's Picovoice Console are for "
                "Porcupine 3 and later), and model_path must be a Porcupine 1.9 porcupine_params.pv",
                retryable=False,
            )
        return BackendError(f"{version} rejected its settings ({detail})", retryable=False)
    if isinstance(exc, KeyError | MemoryError):
        return BackendError(f"{version} failed: {type(exc).__name__} {detail}".rstrip(), retryable=False)
    return None


def describe(exc: BaseException) -> str:
    """One line from an exception: pvporcupine 2+'s message and message stack, or ``str(exc)``."""
    stack = getattr(exc, "message_stack", None)
    message = getattr(exc, "message", None)
    if stack:
        parts = [str(message)] if message else []
        return "; ".join([*parts, *(str(line) for line in stack)])
    return " ".join(str(exc).split()) or type(exc).__name__


def redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def cpu_part() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            parts = {line.split(":")[-1].strip() for line in cpuinfo if line.startswith("CPU part")}
    except OSError:
        return "CPU part unknown"
    return f"CPU part {', '.join(sorted(parts))}" if parts else "no CPU part in /proc/cpuinfo"


def bundled_library_hint() -> str:
    spec = importlib.util.find_spec("pvporcupine")
    if spec is None or not spec.submodule_search_locations:
        return "lib/raspberry-pi/cortex-a72-aarch64/libpv_porcupine.so in the pvporcupine package"
    package = next(iter(spec.submodule_search_locations))
    return os.path.join(package, "lib", "raspberry-pi", "cortex-a72-aarch64", "libpv_porcupine.so")
