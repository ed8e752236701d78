"""The documentation follows the code: hooks, settings, built-in backends, CLI commands, and what the
shell examples print; and the docs site builds with no broken link."""

from __future__ import annotations

import difflib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import typer.main
from pydantic import BaseModel

from magoo_core import hookspecs
from magoo_core.cli import build_app
from magoo_core.plugins import Plugins, create_plugin_manager
from magoo_core.profile import EngineSettings, MagooSettings
from magoo_core.roles import Role

ROOT = Path(__file__).resolve().parents[1]
HOOKS_DOC = ROOT / "docs" / "plugin-hooks.md"
PROFILES_DOC = ROOT / "docs" / "profiles.md"
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"
PLUGINS = ROOT / "plugins"


# ---- reading markdown ---------------------------------------------------------------------------


@dataclass
class Section:
    """A heading, the group heading above it, and the lines under it (outside and inside code)."""

    level: int
    title: str
    parent: str | None
    text: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)


def sections(path: Path) -> list[Section]:
    """Split a markdown file at its headings; code blocks never start a section."""
    found: list[Section] = []
    current = Section(0, "", None)
    parents: dict[int, str] = {}
    fence = None
    for line in path.read_text(encoding="utf-8").splitlines():
        marker = re.match(r"^\s*(```|~~~)", line)
        if marker:
            fence = None if fence == marker.group(1) else (fence or marker.group(1))
            continue
        if fence:
            current.code.append(line)
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            level, title = len(heading.group(1)), heading.group(2)
            parents = {lvl: t for lvl, t in parents.items() if lvl < level}
            current = Section(level, title, parents.get(level - 1))
            parents[level] = title
            found.append(current)
            continue
        current.text.append(line)
    return found


def tables(lines: list[str]) -> list[list[dict[str, str]]]:
    """The markdown tables in ``lines``, each a list of rows keyed by the header cells (``\\|`` is a pipe)."""
    found: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in lines:
        if not line.lstrip().startswith("|"):
            header = None
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if header is None:
            header = [c.lower() for c in cells]
            found.append([])
        elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
            found[-1].append(dict(zip(header, cells, strict=False)))
    return found


# ---- docs/plugin-hooks.md -----------------------------------------------------------------------


def spec_functions() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(obj)
        for name, obj in vars(hookspecs).items()
        if name.startswith("magoo_") and inspect.isfunction(obj)
    }


def spec_groups() -> dict[str, str]:
    """Each spec's group, from the banner comments of hookspecs.py ("Turn events", ...)."""
    groups: dict[str, str] = {}
    group = ""
    lines = inspect.getsource(hookspecs).splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^# -{10,}$", line) and index + 1 < len(lines):
            title = lines[index + 1]
            if title.startswith("# ") and not re.match(r"^# -{10,}$", title):
                group = title[2:].split(":")[0].strip()
        match = re.match(r"^def (magoo_\w+)\(", line)
        if match:
            groups[match.group(1)] = group
    return groups


def hook_sections() -> dict[str, Section]:
    found = {}
    for section in sections(HOOKS_DOC):
        if section.title.startswith("magoo_"):
            assert section.title not in found, f"{section.title} is documented twice"
            found[section.title] = section
    return found


def test_the_hook_specs_have_groups():
    # guards the banner parsing below: a hook outside any group would make the check pointless
    groups = spec_groups()
    assert set(groups) == set(spec_functions())
    assert all(groups.values())


@pytest.mark.parametrize("name", sorted(spec_functions()))
def test_every_hook_is_documented_with_its_signature(name):
    documented = hook_sections()
    assert name in sorted(documented), f"docs/plugin-hooks.md has no '### {name}' heading"
    section = documented[name]
    assert section.level == 3, f"'{name}' must be a level-3 heading (### {name})"
    parameters = list(spec_functions()[name].parameters)
    expected = f"{name}({', '.join(parameters)})"
    signatures = [line.strip() for line in section.code if line.strip().startswith(f"{name}(")]
    assert signatures, f"no code block under '### {name}' shows its signature; expected: {expected}"
    assert signatures == [expected], f"docs/plugin-hooks.md shows {signatures} for {name}; the spec is {expected}"


@pytest.mark.parametrize("name", sorted(spec_functions()))
def test_every_hook_is_under_its_group(name):
    section = hook_sections().get(name)
    if section is None:
        pytest.skip("reported by test_every_hook_is_documented_with_its_signature")
    assert section.parent == spec_groups()[name], (
        f"'{name}' is under '## {section.parent}' in docs/plugin-hooks.md; hookspecs.py has it in '{spec_groups()[name]}'"
    )


def test_the_hooks_doc_documents_no_hook_that_does_not_exist():
    specs = spec_functions()
    headings = set(hook_sections())
    signatures = {
        match.group(1)
        for section in sections(HOOKS_DOC)
        for line in section.code
        if (match := re.match(r"^\s*(magoo_\w+)\(", line))
    }
    assert headings - set(specs) == set(), "documented hooks that hookspecs.py does not define"
    assert signatures - set(specs) == set(), "signatures of hooks that hookspecs.py does not define"


def test_the_hooks_doc_follows_the_order_of_the_specs():
    documented = [name for name in hook_sections() if name in spec_functions()]
    in_source = [name for name in spec_groups() if name in documented]
    assert documented == in_source


# ---- docs/profiles.md ---------------------------------------------------------------------------


def toml_value(value: object) -> str:
    """How a default is written in the docs' tables: TOML syntax in backticks, ``unset`` for None."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str | Path):
        return f"`{json.dumps(str(value))}`"
    if isinstance(value, list | tuple):
        return "`[" + ", ".join(json.dumps(v) for v in value) + "]`"
    return f"`{value!r}`"


def default_cell(field_info) -> str:
    if field_info.is_required():
        return "required"
    return toml_value(field_info.get_default(call_default_factory=True))


def first_table_under(predicate, doc: Path = PROFILES_DOC) -> list[dict[str, str]]:
    """The first table of the one section of ``doc`` whose title satisfies ``predicate``."""
    where = doc.relative_to(ROOT)
    matching = [s for s in sections(doc) if predicate(s.title)]
    assert len(matching) == 1, f"{where} has {len(matching)} such sections, not one"
    found = tables(matching[0].text)
    assert found, f"the section '{matching[0].title}' of {where} has no table"
    return found[0]


def assert_documented(model: type[BaseModel], rows: list[dict[str, str]], where: str) -> None:
    by_key = {row.get("key", "").strip("`"): row for row in rows}
    for key, field_info in model.model_fields.items():
        assert key in by_key, f"{where}: no table row for '{key}'"
        assert by_key[key].get("default") == default_cell(field_info), (
            f"{where}: '{key}' is documented with default {by_key[key].get('default')!r};"
            f" the code says {default_cell(field_info)!r}"
        )
    extra = set(by_key) - set(model.model_fields)
    assert not extra, f"{where}: documents keys the code does not have: {sorted(extra)}"


@pytest.mark.parametrize(("model", "section"), [(MagooSettings, "magoo"), (EngineSettings, "engine")])
def test_every_setting_is_in_the_profile_reference_with_its_default(model, section):
    rows = first_table_under(lambda title: title.strip("` ").startswith(f"[{section}]"))
    assert_documented(model, rows, f"docs/profiles.md [{section}]")


def backend_heading(role: Role, name: str) -> re.Pattern:
    """The heading of a backend's options: ``[audio_source]`` wav, ``[[actuators]]`` log (in backticks)."""
    return re.compile(rf"^`\[\[?{re.escape(role.value)}\]\]?` {re.escape(name)}$")


def builtin_backends() -> list[tuple[Role, str, type[BaseModel]]]:
    plugins = create_plugin_manager(entry_points=False)
    return [
        (role, name, plugins.backend(role, name).cls.Config) for role in Role for name in plugins.names(role)
    ]


@pytest.mark.parametrize(("role", "name", "config"), builtin_backends(), ids=lambda v: getattr(v, "value", v))
def test_every_builtin_backend_is_in_the_profile_reference(role, name, config):
    rows = first_table_under(backend_heading(role, name).match)
    assert_documented(config, rows, f"docs/profiles.md [{role.value}] {name}")


# ---- plugins/*/README.md ------------------------------------------------------------------------


def workspace_distributions() -> list[str]:
    """The plugin distributions of this repository: one folder each under plugins/, named like it."""
    return sorted(folder.name for folder in PLUGINS.iterdir() if (folder / "pyproject.toml").is_file())


def installed_plugins() -> Plugins:
    return create_plugin_manager(environ={})  # every entry point, whatever MAGOO_LOAD_PLUGINS says


def plugin_backends() -> list[tuple[Role, str, type[BaseModel], str]]:
    """Every backend registered by a plugin of plugins/, with its distribution."""
    plugins = installed_plugins()
    found = []
    for role in Role:
        for name in plugins.names(role):
            info = plugins.backend(role, name)
            if info.distribution in workspace_distributions():
                found.append((role, name, info.cls.Config, info.distribution))
    return found


def test_every_workspace_plugin_is_loaded():
    # guards the test below: a plugin that is not installed would have no backends to check
    loaded = {plugin.distribution for plugin in installed_plugins().plugins if plugin.loaded}
    missing = [name for name in workspace_distributions() if name not in loaded]
    assert not missing, f"plugins/ has {missing}, not installed or failing to load: run uv sync --all-packages"


@pytest.mark.parametrize(
    ("role", "name", "config", "distribution"), plugin_backends(), ids=lambda v: getattr(v, "value", v)
)
def test_every_plugin_backend_is_in_its_readme(role, name, config, distribution):
    readme = PLUGINS / distribution / "README.md"
    assert readme.is_file(), f"{distribution} has no README.md (its PyPI page) in plugins/{distribution}/"
    # under a heading like "### `[audio_source]` pyaudio", a table like those of docs/profiles.md
    rows = first_table_under(backend_heading(role, name).match, readme)
    assert_documented(config, rows, f"plugins/{distribution}/README.md [{role.value}] {name}")


# ---- docs/cli.md ---------------------------------------------------------------------------------


def core_cli(monkeypatch) -> dict:
    """The commands of ``build_app()`` with no third-party plugins loaded, by name."""
    monkeypatch.setenv("MAGOO_LOAD_PLUGINS", "")  # installed plugins' commands are theirs to document
    return typer.main.get_command(build_app()).commands


def test_every_cli_command_is_in_the_cli_reference(monkeypatch):
    reference = CLI_DOC.read_text(encoding="utf-8")
    commands = core_cli(monkeypatch)
    assert commands, "build_app() has no commands"
    for name in commands:
        assert re.search(rf"\bmagoo {re.escape(name)}\b", reference), f"docs/cli.md does not mention `magoo {name}`"


def test_every_cli_option_is_in_the_cli_reference(monkeypatch):
    reference = CLI_DOC.read_text(encoding="utf-8")
    for name, command in core_cli(monkeypatch).items():
        for param in command.params:
            for option in param.opts:
                if option.startswith("--") and option != "--help":
                    assert option in reference, f"docs/cli.md does not mention `magoo {name} {option}`"


def command_options(command) -> list[str]:
    """Every option of a command and of its sub-commands (``-p``, ``--profile``, ``--no-probe``), not ``--help``."""
    found = [
        option
        for param in command.params
        for option in [*param.opts, *getattr(param, "secondary_opts", [])]
        if option.startswith("-") and option not in ("--help", "-h")
    ]
    for sub in getattr(command, "commands", {}).values():
        found += command_options(sub)
    return found


def test_every_cli_option_is_in_its_commands_section(monkeypatch):
    # stricter than the test above: `magoo devices -v` is not documented by `magoo run -v`
    titles = {section.title: section for section in sections(CLI_DOC)}
    for name, command in core_cli(monkeypatch).items():
        matching = [title for title in titles if title.startswith(f"`magoo {name}`")]
        assert matching, f"docs/cli.md has no section '## `magoo {name}`: ...'"
        text = "\n".join(titles[matching[0]].text + titles[matching[0]].code)
        missing = [option for option in command_options(command) if not re.search(rf"(?<![\w-]){option}\b", text)]
        assert not missing, f"docs/cli.md's section on `magoo {name}` does not mention {missing}"


def test_the_cli_reference_names_magoos_own_options(monkeypatch):
    monkeypatch.setenv("MAGOO_LOAD_PLUGINS", "")
    app = typer.main.get_command(build_app())
    own = [option for param in app.params for option in param.opts if option not in ("--help", "-h")]
    assert own, "magoo has no options of its own (--version) to check"
    reference = CLI_DOC.read_text(encoding="utf-8")
    missing = [option for option in own if not re.search(rf"\bmagoo {re.escape(option)}\b", reference)]
    assert not missing, f"docs/cli.md does not mention `magoo {missing[0]}`"


# ---- the docs site ------------------------------------------------------------------------------

README_MAX_LINES = 300  # the README is a front door; the rest is a page of the site


def test_the_readme_stays_a_front_door():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines; move sections into docs/ (at most {README_MAX_LINES})"
    )


def test_the_docs_site_builds_strictly(tmp_path):
    # --strict turns every warning into a failure: a broken link or anchor (the README's included,
    # it is the home page), a page missing from the nav
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"},
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert result.returncode == 0 and not warnings, "mkdocs build --strict failed:\n" + (
        "\n".join(warnings) or result.stderr[-3000:]
    )
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "plugins" / "fish" / "index.html").is_file(), "the plugins' READMEs are pages"


# ---- shell examples -----------------------------------------------------------------------------
#
# A fenced block of README.md or of a page of the site that is not a file's content (```toml,
# ```python, ...) shows commands or what they print. Each one is run here or marked as
# illustrative, by an HTML comment on the line right above its fence:
#
#   <!-- illustrative: why it is not run -->     hardware, network, a long run, an excerpt
#   <!-- tested: session -->     its `$ ` lines run in a fresh copy of examples/; what they print
#                                (stdout and stderr) must match the other lines
#   <!-- tested: stdout -->      the same, stdout only
#   <!-- tested: backends -->    a `magoo backends` listing: the same backends, with their keys
#   ... in=/home/pi/kitchen      a tested block may say where it runs: the copy's path is shown so
#   <!-- file: NAME -->          above a file's content (toml, python, text): the page's tested
#   <!-- file: NAME from BASE -->   blocks below it have it as NAME in their copy (from BASE: the
#                                   file BASE with the block's sections in place of its own)
#
# Output is compared by its content, not its layout or its timings: table borders and runs of
# spaces are dropped, times of day and decimal numbers (times, scores, versions) and "N ms" match
# any value, and in the expected lines "..." matches anything (a line of its own: any lines).

DATA_LANGUAGES = {"toml", "python", "json", "ini", "yaml", "mermaid"}
RUNNERS = ("session", "stdout", "backends")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>illustrative|tested|file)\b:?\s*(?P<args>.*?)\s*-->\s*$")


@dataclass
class Block:
    """A fenced block of a markdown file and the marker comment right above it, if any."""

    path: Path
    line: int  # the opening fence's, 1-based
    language: str
    kind: str | None  # "illustrative", "tested", "file" or None
    args: str
    body: list[str]

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def doc_pages() -> list[Path]:
    """README.md and the site's pages, each once and where it really is (some pages are symlinks)."""
    pages = {README.resolve()} | {page.resolve() for page in (ROOT / "docs").rglob("*.md")}
    return sorted(pages)


def fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start, indent, fence = index, opening.group("indent"), opening.group("fence")
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body = []
        index += 1
        while index < len(lines) and not closing.match(lines[index]):
            body.append(lines[index].removeprefix(indent))
            index += 1
        marker = MARKER.match(lines[start - 1]) if start else None
        language = (opening.group("info").split() or [""])[0]
        kind, args = (marker.group("kind"), marker.group("args")) if marker else (None, "")
        found.append(Block(path, start + 1, language, kind, args, body))
        index += 1
    return found


def blocks_to_run() -> list[Block]:
    return [block for page in doc_pages() for block in fenced_blocks(page) if block.kind == "tested"]


@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_shell_example_is_run_or_marked_illustrative(page):
    problems = []
    for block in fenced_blocks(page):
        if block.language in DATA_LANGUAGES:
            if block.kind == "tested":
                problems.append(f"{block.where}: a {block.language} block is a file, not commands: <!-- file: NAME -->")
        elif block.kind == "file":
            if block.language != "text":
                problems.append(f"{block.where}: <!-- file: ... --> is for a file (```toml, ```python, ```text)")
        elif block.kind is None:
            problems.append(
                f"{block.where}: a shell example or output that is neither run nor marked: put"
                " <!-- tested: session --> (see tests/test_docs.py) or <!-- illustrative: why --> right above it"
            )
        elif block.kind == "tested":
            runner = block.args.split()[0] if block.args else ""
            if runner not in RUNNERS:
                problems.append(f"{block.where}: unknown runner {runner!r}; one of {', '.join(RUNNERS)}")
            if not commands_of(block):
                problems.append(f"{block.where}: a tested block needs `$ command` lines")
    assert not problems, "\n".join(problems)


def test_the_shell_examples_are_found():
    # guards the test below: a parser that found nothing would pass it
    blocks = blocks_to_run()
    assert len(blocks) >= 10
    assert {block.args.split()[0] for block in blocks} == set(RUNNERS)


def commands_of(block: Block) -> list[str]:
    return [line[2:] for line in block.body if line.startswith("$ ")]


def options_of(block: Block) -> dict[str, str]:
    """``in=/home/pi/kitchen`` and the like, after the runner's name."""
    return dict(word.split("=", 1) for word in block.args.split()[1:])


def merge_toml_sections(base: str, replacing: str) -> str:
    """``base`` with each of its sections that ``replacing`` has replaced by that one (text, comments kept)."""

    def split(text: str) -> list[tuple[str, list[str]]]:
        parts: list[tuple[str, list[str]]] = [("", [])]
        for line in text.splitlines():
            header = re.match(r"^\s*(\[\[?[^\]]+\]\]?)\s*(#.*)?$", line)
            if header:
                parts.append((header.group(1), []))
            parts[-1][1].append(line)
        return parts

    new = dict(split(replacing)[1:])
    return "\n".join(line for header, lines in split(base) for line in new.get(header, lines)) + "\n"


def files_for(block: Block) -> dict[str, str]:
    """The files the page's ``<!-- file: ... -->`` blocks above ``block`` define, the latest of each name."""
    files: dict[str, str] = {}
    for above in fenced_blocks(block.path):
        if above.line >= block.line:
            break
        if above.kind == "file":
            name, _, base = above.args.partition(" from ")
            text = "\n".join(above.body) + "\n"
            files[name.strip()] = merge_toml_sections((ROOT / base.strip()).read_text(), text) if base else text
    return files


def fresh_copy(block: Block, tmp_path: Path) -> Path:
    """A folder with a copy of examples/ and the page's files: what the block's commands run in."""
    root = tmp_path / "copy"
    shutil.copytree(ROOT / "examples", root / "examples", ignore=shutil.ignore_patterns("out", ".env", "__pycache__"))
    for name, text in files_for(block).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def command_env() -> dict[str, str]:
    """A user's shell after the set-up: the virtual environment's commands first, a wide terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGOO_", "PYTEST_", "PYTHON"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        COLUMNS="200",
        NO_COLOR="1",
        TERM="dumb",
        PYTHONUNBUFFERED="1",  # stdout and stderr interleave as they would on a terminal
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def run_block(block: Block, root: Path) -> str:
    """Run the block's commands in one shell in ``root``; what they print, the copy's path shown as the block says."""
    stderr = subprocess.DEVNULL if block.args.split()[0] == "stdout" else subprocess.STDOUT
    result = subprocess.run(
        ["bash", "-c", "\n".join(commands_of(block))],
        cwd=root,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=180,
    )
    shown = options_of(block).get("in")
    output = result.stdout
    if shown:
        output = output.replace(str(root.resolve()), shown).replace(str(root), shown)
    return output


BOX_DRAWING = re.compile(r"[\u2500-\u257f]")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def normalised(lines: list[str]) -> list[str]:
    """Lines compared by content: no borders, single spaces, any time or decimal number, no blank lines."""
    found = []
    for line in lines:
        line = ANSI.sub("", line)
        line = re.sub(r"\s*\[\s*\d+%\]\s*$", "", line)  # pytest -v's progress
        line = re.sub(r"\b\d\d:\d\d:\d\d\b", "HH:MM:SS", line)
        line = re.sub(r"\d+\.\d+", "N", line)
        line = re.sub(r"\b\d+ ms\b", "N ms", line)
        line = " ".join(BOX_DRAWING.sub(" ", line).split())
        if line:
            found.append(line)
    return found


def shows(expected: list[str], actual: list[str]) -> bool:
    """Whether ``actual`` is what ``expected`` shows, "..." matching anything (on a line of its own, any lines)."""
    any_text, any_lines = re.escape("..."), r"(?:.*\n)*?"
    pattern = "".join(
        any_lines if line == "..." else re.escape(line).replace(any_text, ".*?") + r"\n" for line in expected
    )
    return re.fullmatch(pattern, "".join(line + "\n" for line in actual)) is not None


def backends_listed(lines: list[str]) -> dict[str, set[str]]:
    """``{"[responder] echo": {"template", "fail"}}`` from a ``magoo backends --options`` listing.

    Under each backend's line, its keys are the first words of its least indented lines (the
    descriptions below a key are indented further).
    """
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        line = BOX_DRAWING.sub(" ", ANSI.sub("", line)).rstrip()
        header = re.match(r"^(\[\w+\] \S+)", line)
        if header:
            current = found.setdefault(header.group(1), [])
        elif current is not None and line.strip() and line.strip() != "..." and not line.lstrip().startswith("key "):
            current.append(line)
    keys = {}
    for name, rows in found.items():
        indent = min((len(row) - len(row.lstrip()) for row in rows), default=0)
        keys[name] = {row.split()[0] for row in rows if len(row) - len(row.lstrip()) == indent}
    return keys


def check_backends(block: Block, actual: list[str]) -> list[str]:
    """The backends and keys the block shows are listed (and, without "...", no other backend)."""
    expected_lines = [line for line in block.body if not line.startswith("$ ")]
    shown, listed = backends_listed(expected_lines), backends_listed(actual)
    problems = [f"{name} is not listed" for name in shown if name not in listed]
    problems += [
        f"{name}: {sorted(keys - listed[name])} are not its keys"
        for name, keys in shown.items()
        if not keys <= listed.get(name, keys)
    ]
    if "..." not in (line.strip() for line in expected_lines):
        problems += [f"{name} is listed but not shown" for name in listed if name not in shown]
    return problems


@pytest.mark.parametrize("block", blocks_to_run(), ids=lambda block: block.where)
def test_a_shell_example_shows_what_its_commands_print(block, tmp_path):
    output = run_block(block, fresh_copy(block, tmp_path))
    if block.args.split()[0] == "backends":
        problems = check_backends(block, output.splitlines())
        assert not problems, f"{block.where}: " + "; ".join(problems) + f"\n--- what it printed:\n{output}"
        return
    expected = normalised([line for line in block.body if not line.startswith("$ ")])
    actual = normalised(output.splitlines())
    if not shows(expected, actual):
        diff = "\n".join(difflib.unified_diff(expected, actual, "the docs", "the commands", lineterm=""))
        pytest.fail(
            f"{block.where} does not show what its commands print (compared by content):\n{diff}\n"
            f"--- what they printed:\n{output}"
        )

