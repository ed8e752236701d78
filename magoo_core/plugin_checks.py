"""Is a plugin well formed? Hook names and arguments, and the backend classes it registers.

Every check returns readable problems (strings) instead of raising, so the caller decides whether
a problem marks one plugin failed or stops the program. The hook names come from
:mod:`magoo_core.hookspecs`: a name that starts with ``magoo_`` is a hook, and one no spec knows
is a typo, reported with the nearest real hook name.
"""

from __future__ import annotations

import difflib
import inspect
import re
from functools import cache

from pydantic import BaseModel

from . import hookspecs
from . import services
from .roles import ROLES, Role

BACKEND_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
HOOK_PREFIX = "magoo_"
EVENT_PREFIX = "magoo_on_"

#: the methods a backend class of each role must have (the ``methods`` of :data:`~magoo_core.roles.ROLES`)
REQUIRED_METHODS: dict[Role, tuple[str, ...]] = {info.role: info.methods for info in ROLES}


@cache
def hook_arguments() -> dict[str, tuple[str, ...]]:
    """Every hook spec by name, with the arguments it passes."""
    return {
        name: tuple(inspect.signature(spec).parameters)
        for name, spec in vars(hookspecs).items()
        if name.startswith(HOOK_PREFIX) and inspect.isfunction(spec)
    }


def nearest_hook(name: str, candidates: list[str] | None = None) -> str:
    """'; did you mean 'magoo_on_wake'?' for a misspelled hook name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, candidates or list(hook_arguments()), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_backend_class(role: Role, cls: object) -> str | None:
    """What is wrong with ``cls`` as a backend of ``role`` (None: nothing).

    A backend needs a ``name``, a strict nested ``Config``, the methods of its role, and its
    ``magoo_*`` methods (event hooks the running instance receives) must be real event hooks
    taking only arguments their spec passes — checked here, when the class is registered,
    so a typo fails for every command and not only once ``magoo run`` starts the backend.
    """
    problem = _name_and_config_problem(cls)
    if problem is not None:
        return problem
    missing = [m for m in role.info.methods if not callable(getattr(cls, m, None))]
    if missing:
        return f"is missing {', '.join(missing)}()"
    problems = class_hook_problems(cls)
    return "; ".join(problems) if problems else None


#: registration hooks called once per run, also on a running backend (its config decides what it offers)
INSTANCE_REGISTRATIONS = frozenset({"magoo_register_tools"})


def class_hook_problems(cls: type) -> list[str]:
    """The ``magoo_*`` methods of a backend class that are no event hook, or take an unknown argument."""
    specs = hook_arguments()
    events = [name for name in specs if name.startswith(EVENT_PREFIX)]
    problems = []
    for attribute in sorted(dir(cls)):
        if not attribute.startswith(HOOK_PREFIX) or not callable(getattr(cls, attribute, None)):
            continue
        method = f"{cls.__name__}.{attribute}"
        if attribute not in specs:
            problems.append(f"{method} is not a magoo hook{nearest_hook(attribute, events)}")
        elif not attribute.startswith(EVENT_PREFIX) and attribute not in INSTANCE_REGISTRATIONS:
            problems.append(f"{method}: registration hooks belong in the plugin module, not on a backend class")
        else:
            unknown = [arg for arg in _required_arguments(cls, attribute) if arg not in specs[attribute]]
            if unknown:
                passed = ", ".join(specs[attribute]) or "nothing"
                problems.append(f"{method} takes {', '.join(unknown)}, which the hook does not pass (it passes {passed})")
    return problems


def _required_arguments(cls: type, attribute: str) -> list[str]:
    """The arguments without a default that a method of ``cls`` needs, without ``self``/``cls``.

    As pluggy counts them: an argument with a default is optional and never checked.
    """
    raw = inspect.getattr_static(cls, attribute)
    function = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # a builtin or a callable object without a signature
        return []
    if (inspect.isfunction(raw) or isinstance(raw, classmethod)) and parameters:
        parameters = parameters[1:]  # self, or cls
    return [
        p.name for p in parameters
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def check_service_class(cls: object) -> str | None:
    """What is wrong with ``cls`` as a service (None: nothing): a ``name``, a strict ``Config``,
    ``roles`` (a non-empty set of roles it may serve), each role's methods, and real event hooks."""
    problem = _name_and_config_problem(cls)
    if problem is not None:
        return problem
    roles = getattr(cls, "roles", None)
    if not isinstance(roles, frozenset | set) or not roles or not all(isinstance(r, Role) for r in roles):
        return "needs a class attribute `roles`: a frozenset of the magoo_core.Role values it serves"
    if not roles <= services.SERVABLE:
        return "cannot serve actuators (each [[actuators]] entry is a backend of its own)"
    missing = sorted({m for role in roles for m in REQUIRED_METHODS[role] if not callable(getattr(cls, m, None))})
    if missing:
        return f"is missing {', '.join(missing)}() for the roles it serves"
    problems = class_hook_problems(cls)
    return "; ".join(problems) if problems else None


def _name_and_config_problem(cls: object) -> str | None:
    """What a backend and a service class both need: to be a class, a ``name``, a strict ``Config``."""
    if not isinstance(cls, type):
        return "register() takes a class, not an instance"
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not BACKEND_NAME.match(name):
        return "needs a class attribute `name`: lowercase letters, digits, '-' or '_'"
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and issubclass(config, BaseModel)):
        return "needs a nested `Config` class (a magoo_core.BackendConfig)"
    if config.model_config.get("extra") != "forbid":
        return "its Config must forbid extra keys (subclass magoo_core.BackendConfig)"
    return None
