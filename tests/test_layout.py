"""The shape of ``magoo_core``: every module imports on its own, and no import goes round in a circle.

An import circle is two or more modules that import each other, directly or through others, when
they are imported (module level, outside ``if TYPE_CHECKING:``). Imports inside functions are
left out on purpose: that is how heavy libraries are loaded when a backend starts (style guide 4).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import magoo_core

CORE = Path(magoo_core.__file__).parent


def modules(package: Path) -> dict[str, Path]:
    """Each module of the package under ``package`` by its dotted name."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imported_at_import_time(tree: ast.Module, *, typing_too: bool = False) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) and not typing_too:
            found.extend(n for n in node.orelse for n in ast.walk(n) if isinstance(n, (ast.Import, ast.ImportFrom)))
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            found.extend(n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom)))
    return found


def import_graph(package: Path, *, typing_too: bool = False) -> dict[str, set[str]]:
    """For each module of the package, the modules of the same package it imports at import time
    (with ``typing_too``, also those it imports for type checkers only, under ``if TYPE_CHECKING:``)."""
    names = modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imported_at_import_time(ast.parse(path.read_text(encoding="utf-8")), typing_too=typing_too):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                parent = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                base = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in names else base)
        graph[name] = {target for target in targets if target in names and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: each a list of modules, sorted (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_magoo_core_has_no_import_circle():
    graph = import_graph(CORE)
    assert len(graph) > 30, "the graph was read"
    assert graph["magoo_core.engine"] >= {"magoo_core.turn", "magoo_core.speaker", "magoo_core.lifecycle"}
    assert circles(graph) == []


def test_not_even_the_imports_for_type_checkers_go_round():
    """A circle of ``if TYPE_CHECKING:`` imports runs nowhere, but it means two modules each need
    the other to be understood: the parts would not stand on their own."""
    assert circles(import_graph(CORE, typing_too=True)) == []


#: The engine and the parts it was split into (issue 18): each stays small enough to read.
ENGINE_PARTS = ["engine", "lifecycle", "wake_worker", "speaker", "turn", "continuous", "monitor"]


def test_the_engine_stays_a_coordinator_and_its_parts_stay_small():
    assert len((CORE / "engine.py").read_text(encoding="utf-8").splitlines()) <= 400
    for name in ENGINE_PARTS:
        tree = ast.parse((CORE / f"{name}.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno - node.lineno < 300, f"{name}.{node.name} is {node.end_lineno - node.lineno + 1} lines: split it"


#: The most lines a class of ``magoo_core`` may have (style guide 11: a class past ~300 lines is two).
CLASS_LINES = 300
#: The most lines a module of ``magoo_core`` may have, but for those named in :data:`LONG_MODULES`.
MODULE_LINES = 600
#: Modules allowed past :data:`MODULE_LINES`, each with the reason (none today: a new one needs one).
LONG_MODULES: dict[str, str] = {}


def long_classes(package: Path, limit: int) -> list[str]:
    """Every class of the package under ``package``, nested ones too, that is over ``limit`` lines."""
    found = []
    for name, path in modules(package).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > limit:
                found.append(f"{name}.{node.name} is {node.end_lineno - node.lineno + 1} lines")
    return found


def long_modules(package: Path, limit: int) -> list[str]:
    """Every module of the package under ``package`` that is over ``limit`` lines."""
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules(package).items()}
    return [f"{name} is {lines} lines" for name, lines in lengths.items() if lines > limit]


def test_no_class_of_magoo_core_is_over_300_lines():
    """Issue 18's done-when, for every module, the testing helpers included."""
    assert long_classes(CORE, CLASS_LINES) == [], "split each: a class that long has more than one job"


def test_no_module_of_magoo_core_is_over_600_lines_but_the_named_ones():
    too_long = [row for row in long_modules(CORE, MODULE_LINES) if row.split()[0] not in LONG_MODULES]
    assert too_long == [], f"split each by its jobs, or name it in LONG_MODULES with the reason: {too_long}"


def test_the_length_checks_find_a_long_class_and_a_long_module(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    body = "".join(f"    x{i} = {i}\n" for i in range(5))
    (package / "a.py").write_text("class Outer:\n    class Inner:\n" + body.replace("    ", "        ") + "\n\nclass Small:\n    y = 1\n")
    assert long_classes(package, 6) == ["pkg.a.Outer is 7 lines"]
    assert long_classes(package, 5) == ["pkg.a.Outer is 7 lines", "pkg.a.Inner is 6 lines"]
    assert long_modules(package, 10) == ["pkg.a is 11 lines"]
    assert long_modules(package, 11) == []


def test_the_circle_check_finds_a_circle(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("from .sub.c import thing\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import d\nfrom ..a import x\n")
    (package / "d.py").write_text("from .sub import c\n")  # only a type-checking import leads back here
    (package / "e.py").write_text("def late():\n    from . import a\n")  # a late import is no circle
    assert circles(import_graph(package)) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


CORE_MODULES = sorted(name for name in modules(CORE) if not name.endswith("__main__"))

#: Imports each module named on stdin in a forked child of one interpreter that has imported no
#: magoo module (only the big third-party ones, so each child costs milliseconds, not a start-up);
#: prints {module: the traceback, or ""} as JSON.
_IMPORT_EACH = """
import importlib, json, os, sys, traceback
for library in ("pydantic", "pluggy", "typer"):
    importlib.import_module(library)
results = {}
for name in json.loads(sys.stdin.read()):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            said = b""
        except BaseException:
            said = traceback.format_exc().encode()
        os.write(write, said[:60000])
        os._exit(0)
    os.close(write)
    said = b""
    while piece := os.read(read, 65536):
        said += piece
    os.close(read)
    os.waitpid(pid, 0)
    results[name] = said.decode()
print(json.dumps(results))
"""


@pytest.fixture(scope="session")
def imported_on_their_own() -> dict[str, str]:
    """Every core module imported on its own, in one child process that forks a child per module
    (their tests are one xdist group, so a single worker does this, once)."""
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH], input=json.dumps(CORE_MODULES),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.xdist_group("core-modules-imported-on-their-own")
def test_an_xdist_group_keeps_its_tests_on_one_worker(request):
    """scripts/test.sh runs ``--dist loadgroup``: the CPU-bound benches must not run beside each
    other, and the modules above are imported once. pytest 9.2 broke the mark silently
    (pytest-xdist#1386), so the pin in pyproject.toml is checked here."""
    if not request.config.getoption("loadgroup", default=False):
        pytest.skip("not under pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@core-modules-imported-on-their-own"), request.node.nodeid


@pytest.mark.xdist_group("core-modules-imported-on-their-own")
@pytest.mark.parametrize("module", CORE_MODULES)
def test_each_core_module_imports_on_its_own(module, imported_on_their_own):
    """In a process that had imported no other magoo module: a circle the graph missed (a dynamic
    import) fails here."""
    assert imported_on_their_own[module] == "", imported_on_their_own[module]


#: Each plugin whose loopback test server lives in a subpackage of its own (issue 18): the runtime,
#: what runs on the Pi, is the package without it.
LOOPBACK_PLUGINS = ["magoo_fish", "magoo_openai_realtime"]


@pytest.mark.parametrize("plugin", LOOPBACK_PLUGINS)
def test_a_plugins_runtime_does_not_import_its_loopback_server(plugin):
    """In a fresh interpreter, import the plugin and each of its modules outside ``loopback``."""
    package = Path(__import__(plugin).__file__).parent
    runtime = sorted(name for name in modules(package) if ".loopback" not in name and not name.endswith("__main__"))
    assert len(runtime) > 2, runtime
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({name!r})\n" for name in runtime) + (
        f"print(sorted(name for name in sys.modules if name.startswith({plugin + '.loopback'!r})))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"{plugin}'s runtime imports its loopback server: {result.stdout}"
