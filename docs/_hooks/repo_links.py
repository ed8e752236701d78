"""mkdocs hook: links written for GitHub also work on the site.

Some pages of the site are symlinks to files elsewhere in the repository: ``docs/index.md`` is the
README, ``docs/plugins/<name>.md`` a plugin's README. Their links are relative to where the file
really is (``docs/quickstart.md`` in the README, ``../../README.md`` in a plugin's README), and
pages of docs/ link to those files where they really are too (``../plugins/magoo-fish/README.md``),
so that every link works on GitHub. mkdocs resolves a link from the page's place in docs/ instead.

Before mkdocs reads a page's links, this hook resolves each relative link from the real file and
points it at the page that file is on the site. Links to anything else are left alone, so a link
that leads nowhere still fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

# [text](target) and [text](target "title"), outside code spans; the target has no spaces
_LINK = re.compile(r"(?<!\\)(\]\()([^)\s#]+)(#[^)\s]*)?((?:\s+\"[^\"]*\")?\))")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _site_pages(files) -> dict[Path, str]:
    """Each documentation page by the real path of its source: ``{/repo/README.md: "index.md"}``."""
    return {Path(f.abs_src_path).resolve(): f.src_uri for f in files.documentation_pages()}


def _rewrite(line: str, real_dir: Path, page_uri: str, pages: dict[Path, str]) -> str:
    def point(match: re.Match) -> str:
        opening, target, anchor, closing = match.group(1), match.group(2), match.group(3) or "", match.group(4)
        if _SCHEME.match(target) or target.startswith("/"):
            return match.group(0)
        on_site = pages.get((real_dir / target).resolve())
        if on_site is None:
            return match.group(0)
        relative = posixpath.relpath(on_site, posixpath.dirname(page_uri) or ".")
        return f"{opening}{relative}{anchor}{closing}"

    # code spans keep their text: split them off, rewrite the rest
    parts = re.split(r"(`+[^`]*`+)", line)
    return "".join(part if part.startswith("`") else _LINK.sub(point, part) for part in parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Rewrite the page's relative links to the site's pages (mkdocs event; runs once per page)."""
    pages = _site_pages(files)
    real_dir = Path(page.file.abs_src_path).resolve().parent
    lines, fence = [], None
    for line in markdown.split("\n"):
        marker = _FENCE.match(line)
        if marker:
            fence = None if fence == marker.group(1) else (fence or marker.group(1))
        elif fence is None:
            line = _rewrite(line, real_dir, page.file.src_uri, pages)
        lines.append(line)
    return "\n".join(lines)
