"""The README stays short, and every relative link in the README, docs/*.md and reports/ READMEs leads somewhere.

Pure Python (no torch, no ablate import): reads the markdown files as text.
"""
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_MAX_LINES = 250

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)     # fenced code blocks: their brackets are code
CODE_SPAN = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target), the text allowed one level of nested brackets, an optional "title" after it
LINK = re.compile(r"!?\[((?:[^\[\]\n]|\[[^\[\]\n]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)    # http:, https:, mailto:, ... (any URL scheme)


def markdown_files():
    return [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "reports" / "README.md",
            *sorted((ROOT / "reports").glob("*/README.md"))]


def _blank(match):
    """The matched text as spaces, newlines kept: offsets and line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _code_span(match):
    """A code span that holds what looks like a link is code, not a link; one that does not may be a link's text."""
    return _blank(match) if "](" in match.group(0) else match.group(0)


def relative_links(text):
    """(line number, target) of every relative link in markdown ``text``, outside code."""
    text = CODE_SPAN.sub(_code_span, FENCE.sub(_blank, text))
    for match in LINK.finditer(text):
        target = match.group(2)
        if EXTERNAL.match(target):
            continue
        yield text.count("\n", 0, match.start()) + 1, target


def problem(source: Path, target: str):
    """Why ``target``, linked from ``source``, does not resolve to a file or directory of the repository; None when
    it does."""
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    if not path:
        return None                                    # #anchor: a heading of the same file
    if path.startswith("/"):
        return "is an absolute path; link relative to the markdown file's folder"
    resolved = (source.parent / path).resolve()
    if not resolved.is_relative_to(ROOT):
        return f"points outside the repository (to {resolved})"
    if not resolved.exists():
        return f"{resolved.relative_to(ROOT)} does not exist (resolved from {source.parent.relative_to(ROOT)}/)"
    return None


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines, over the limit of {README_MAX_LINES}: move method write-ups to docs/ and "
        f"findings to reports/<topic>/README.md")


def test_the_link_check_sees_the_documents():
    missing = [str(path.relative_to(ROOT)) for path in markdown_files() if not path.is_file()]
    assert not missing, f"markdown files the link check expects are missing: {', '.join(missing)}"
    assert list((ROOT / "docs").glob("*.md")), "docs/ holds no markdown file"


@pytest.mark.parametrize("source", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(source):
    if not source.is_file():
        pytest.skip(f"{source.relative_to(ROOT)} is missing (test_the_link_check_sees_the_documents says so)")
    name = source.relative_to(ROOT)
    broken = [f"{name}:{line}: link ({target}) {why}"
              for line, target in relative_links(source.read_text(encoding="utf-8"))
              if (why := problem(source, target)) is not None]
    assert not broken, f"{len(broken)} broken relative link(s) in {name}:\n" + "\n".join(broken)


@pytest.mark.parametrize("text, expected", [
    ("see [docs](docs/proxy.md) and [the ladder](reports/placement_ladder/README.md#audit)",
     ["docs/proxy.md", "reports/placement_ladder/README.md#audit"]),
    ("[`reports/`](reports/README.md), ![fig](a.png \"title\"), [web](https://example.org), [m](mailto:a@b.c)",
     ["reports/README.md", "a.png"]),
    ("[same file](#two-commands)\n```\nx = d[k](y)  # code, not a link\n```\n`cfg[a](b)` too", ["#two-commands"]),
    ("[a [nested] text](x/y.md)", ["x/y.md"]),
])
def test_link_parser(text, expected):
    assert [target for _, target in relative_links(text)] == expected


def test_problem_says_why():
    source = ROOT / "docs" / "proxy.md"
    assert problem(source, "../README.md") is None
    assert problem(source, "../reports/") is None
    assert problem(source, "#anchor") is None
    assert "does not exist" in problem(source, "no_such_file.md#x")
    assert "outside the repository" in problem(source, "../../../etc/passwd")
    assert "absolute path" in problem(source, "/README.md")
