"""Errors that magoo and its plugins raise on purpose.

Every message is written for the person running the assistant: it says what went wrong and
what to do next, in one line, and never contains a secret.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from .types import BackendFailure


class MagooError(Exception):
    """Base of every error magoo raises on purpose."""


class BackendError(MagooError):
    """A backend could not do its job for this turn.

    The engine drops the turn, emits ``magoo_on_error`` and keeps listening.

    :param message: one readable line naming what to fix.
    :param retryable: False when trying again cannot help (a rejected key, a missing library);
        the engine then does not restart the backend in a loop.
    :param restart: False when the backend recovers by itself on its own schedule (a client that
        reconnects with its own backoff): the engine then never restarts it for this failure, and
        a restart could only defeat that backoff.
    """

    def __init__(self, message: str, *, retryable: bool = True, restart: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.restart = restart


class MissingDependency(BackendError):
    """A library a backend needs is not installed."""

    def __init__(self, module: str, *, backend: str, install: str) -> None:
        super().__init__(
            f"backend '{backend}' needs the Python module '{module}', which is not installed. "
            f"Install it with: {install}",
            retryable=False,
        )
        self.module = module
        self.install = install


class PluginError(MagooError):
    """A plugin is wrong in a way its author must fix (misspelled hook, duplicate backend name)."""


class ProfileError(MagooError):
    """A profile has problems; ``issues`` holds every one found, so all are shown together."""

    def __init__(self, issues: list) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


def require(module: str, *, backend: str, install: str) -> ModuleType:
    """Import ``module`` for ``backend`` when the backend starts, not when the plugin loads.

    :raises MissingDependency: naming the module and the install command.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name != module and not module.startswith(exc.name):
            raise  # the module exists but is broken inside: that traceback is the useful one
        raise MissingDependency(module, backend=backend, install=install) from None


def describe_failure(spec: Any, exc: BaseException, turn: int | None = None) -> BackendFailure:
    """Turn an exception from a backend into the one-line failure hooks and logs see.

    :param spec: the failing backend's :class:`~magoo_core.profile.BackendSpec` (its role,
        backend, section and plugin info are read).

    A :class:`BackendError` is the backend saying what is wrong; anything else is a bug in the
    plugin, so the message names the distribution to report it to.
    """
    if isinstance(exc, BackendError):
        message, retryable = exc.message, exc.retryable
    elif isinstance(exc, TimeoutError):
        message, retryable = "timed out", True
    else:
        message = (
            f"{type(exc).__name__}: {exc} (a bug in {spec.info.distribution} {spec.info.version};"
            " the traceback is in the log)"
        )
        retryable = True
    return BackendFailure(spec.role.value, spec.backend, f"{spec.section} {spec.backend}: {message}", retryable, turn)
