"""Every document the repository points to is in it: a reader of a fresh clone finds each page a comment, a test
or a document cites, at the heading it names, and the README's Layout is the tree as it is.

- no tracked file cites the design outline or the reference notes the project started from (they were never part
  of the repository; their facts live in ``docs/`` now);
- every relative link in ``README.md`` and ``docs/*.md`` leads to a tracked file, and its ``#anchor`` to a heading
  of that page (GitHub's slugs);
- every ``docs/<page>.md`` or ``README.md#<anchor>`` a tracked file mentions (code comments point to the docs that
  way) names a page and a heading that exist;
- every repository path the README and ``docs/`` name in backticks exists; the README's Layout names every
  top-level directory and every module of the packages it describes; the contract's tables name what the code
  reads and stores.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path, PurePosixPath

import pytest

from kinotrakt.config import Settings

REPO = Path(__file__).resolve().parents[2]
THIS_FILE = PurePosixPath("tests/unit/test_docs_links.py")

# Citations of documents that are not in the repository. Built from pieces so that this file does not cite them.
NOT_IN_THE_REPOSITORY = (
    re.compile("DESIGN" + r"\s*§"),
    re.compile(r"\bDESIGN" + r"\.md\b"),
    re.compile(r"\breference" + r"/[\w.-]+\.(?:md|json)\b"),
    re.compile(r"(?<!/)\b(?:kinopub|trakt)" + r"-api\.md\b"),
    re.compile(r"(?:\.\./|/work/)" + r"shared\b"),
)
# `docs/<page>.md`, `docs/<page>.md#<anchor>` or `README.md#<anchor>`, not inside a URL or another path.
DOC_MENTION = re.compile(r"(?<![\w/.-])((?:docs/[\w.-]+\.md|README\.md)(?=[#\s`'\")\],;:.]|$)(?:#[\w-]+)?)")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


# ---------------------------------------------------------------- the rules, on text


def forbidden_citations(text: str) -> list[str]:
    """What ``text`` cites that a clone does not hold."""
    return [match.group(0) for pattern in NOT_IN_THE_REPOSITORY for match in pattern.finditer(text)]


def outside_fences(markdown: str) -> Iterator[str]:
    """The lines of a markdown text that are not inside a fenced code block."""
    fenced = False
    for line in markdown.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets GitHub's ``-1``, ``-2`` suffixes."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in outside_fences(markdown):
        match = HEADING.match(line)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(markdown: str) -> list[str]:
    """The targets of a page's markdown links that point inside the repository (no scheme, not in code)."""
    targets = []
    for line in outside_fences(markdown):
        for target in MARKDOWN_LINK.findall(INLINE_CODE.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):
                targets.append(target)
    return targets


def doc_mentions(text: str) -> list[str]:
    return DOC_MENTION.findall(text)


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line), up to the next heading of any level."""
    lines = markdown.splitlines()
    assert heading in lines, f"no heading {heading!r}"
    body = []
    for line in lines[lines.index(heading) + 1 :]:
        if HEADING.match(line):
            break
        body.append(line)
    return "\n".join(body)


def variables_in(table: str) -> set[str]:
    """The environment variables a markdown table names in its first column."""
    rows = [line.split("|")[1] for line in table.splitlines() if line.startswith("|")]
    return {name for cell in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}


# ---------------------------------------------------------------- the repository


@cache
def tracked() -> tuple[PurePosixPath, ...]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as the developer runs it
        cwd=REPO,
        capture_output=True,
        check=False,
    )
    assert listing.returncode == 0, f"git ls-files failed (run the tests from a clone): {listing.stderr!r}"
    return tuple(PurePosixPath(name) for name in listing.stdout.decode().split("\0") if name)


@cache
def tracked_dirs() -> frozenset[PurePosixPath]:
    return frozenset(parent for path in tracked() for parent in path.parents if parent != PurePosixPath("."))


def exists(path: PurePosixPath) -> bool:
    return path in set(tracked()) or path in tracked_dirs()


def read(path: PurePosixPath) -> str | None:
    """A tracked text file's content (None for a binary or a file deleted but not yet committed)."""
    file = REPO / path
    if not file.is_file():
        return None
    data = file.read_bytes()
    return None if b"\0" in data else data.decode("utf-8", errors="replace")


def markdown_pages() -> list[PurePosixPath]:
    return [path for path in tracked() if path == PurePosixPath("README.md") or path.match("docs/*.md")]


@cache
def page_anchors(path: PurePosixPath) -> frozenset[str]:
    return frozenset(anchors(read(path) or ""))


def resolve(target: str, page: PurePosixPath) -> tuple[PurePosixPath, str]:
    """A link target, relative to ``page``'s directory, as a repository path and an anchor ('' for none)."""
    path, _, anchor = target.partition("#")
    if not path:
        return page, anchor
    parts: list[str] = []
    for part in (*page.parent.parts, *PurePosixPath(path).parts):
        if part == "..":
            parts.pop() if parts else parts.append("..")
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts), anchor


def broken_link(target: PurePosixPath, anchor: str) -> str | None:
    """Why a link to ``target#anchor`` leads nowhere, or None."""
    if not exists(target):
        return "no such file in the repository"
    if anchor and target.suffix == ".md" and anchor not in page_anchors(target):
        return f"{target} has no heading #{anchor}"
    return None


# ---------------------------------------------------------------- the tests


def test_the_rules_catch_what_they_are_for() -> None:
    # Given texts that cite missing documents, link to missing anchors, or are fine
    missing_doc = "see DESIGN" + " §3.6 and the " + "reference/" + "trakt-api.md"
    # Then each rule finds exactly what it should
    assert forbidden_citations(missing_doc) == ["DESIGN" + " §", "reference/" + "trakt-api.md"]
    assert forbidden_citations("docs/trakt.md#history, RFC 6749 §5.2") == []
    assert slug("Try the whole README offline: `make sandbox`") == "try-the-whole-readme-offline-make-sandbox"
    assert slug("One view's way from Kinopub to a Trakt play") == "one-views-way-from-kinopub-to-a-trakt-play"
    assert anchors("# A\n```\n# not a heading\n```\n## A\n## Time, HTTP and failures") == {
        "a",
        "a-1",
        "time-http-and-failures",
    }
    links = "[x](docs/" + "a.md#b) [y](https://e.org/c.md) `[z](d.md)` [w](#w)"
    assert relative_links(links) == ["docs/" + "a.md#b", "#w"]
    comment = "# (docs/" + "trakt.md#history, 2026); https://x.org/docs/" + "a.md#b; README" + ".md#layout."
    assert doc_mentions(comment) == ["docs/" + "trakt.md#history", "README" + ".md#layout"]
    assert resolve("../README.md#layout", PurePosixPath("docs/contract.md")) == (PurePosixPath("README.md"), "layout")
    assert broken_link(PurePosixPath("docs/contract.md"), "no-such-heading") is not None
    assert broken_link(PurePosixPath("docs/contract.md"), "secrets") is None


def test_no_tracked_file_cites_a_document_the_repository_does_not_hold() -> None:
    # Given every tracked text file (this one builds its patterns from pieces)
    found = []
    for path in tracked():
        text = read(path)
        if text is None or path == THIS_FILE:
            continue
        # When it is searched for citations of the design outline and the reference notes
        found += [f"{path}: {citation}" for citation in forbidden_citations(text)]
    # Then there are none: their facts are in docs/, and comments point there
    assert not found, "cite docs/ instead:\n" + "\n".join(found)


@pytest.mark.parametrize("page", markdown_pages(), ids=str)
def test_every_link_of_the_docs_resolves(page: PurePosixPath) -> None:
    # Given a page of the README or docs/, When its relative links are followed
    broken = []
    for target in relative_links(read(page) or ""):
        path, anchor = resolve(target, page)
        why = broken_link(path, anchor)
        if why is not None:
            broken.append(f"[...]({target}): {why}")
    # Then each reaches a tracked file, and a heading of it when it names one
    assert not broken, f"{page}:\n" + "\n".join(broken)


def test_every_mention_of_a_docs_page_and_anchor_resolves() -> None:
    # Given every tracked text file (code comments point to the docs as docs/<page>.md#<anchor>)
    broken = []
    for path in tracked():
        text = read(path)
        if text is None:
            continue
        for mention in doc_mentions(text):
            target, _, anchor = mention.partition("#")
            why = broken_link(PurePosixPath(target), anchor)
            if why is not None:
                broken.append(f"{path}: {mention}: {why}")
    # Then each page exists and has the heading named
    assert not broken, "\n".join(broken)


def test_every_repository_path_the_docs_name_exists() -> None:
    # Given the paths README.md and docs/ name in backticks that start at a top-level directory of the repository
    top = {path.parts[0] for path in tracked_dirs() if len(path.parts) == 1}
    missing = []
    for page in markdown_pages():
        for line in outside_fences(read(page) or ""):
            for code in INLINE_CODE.findall(line):
                name = code.split()[0].split(":")[0].rstrip(".,;")
                if "/" not in name or name.split("/")[0] not in top or re.search(r"[<>{}*…]", name):
                    continue
                # Then each is a tracked file or directory
                if not exists(PurePosixPath(name.rstrip("/"))):
                    missing.append(f"{page}: `{code}`")
    assert not missing, "\n".join(missing)


def test_the_readme_layout_names_every_directory_and_module() -> None:
    # Given the README's Layout section
    readme = read(PurePosixPath("README.md")) or ""
    layout = section(readme, "### Layout")
    named = {code.split()[0].rstrip(".,;") for code in INLINE_CODE.findall(layout)}
    # When the tree's top-level directories and the modules of the packages it describes are listed
    top = sorted(f"{path}/" for path in tracked_dirs() if len(path.parts) == 1)
    wanted: list[str] = []
    for package in (
        "layers/kinotrakt/kinotrakt",
        "layers/kinotrakt/kinotrakt/sync",
        "layers/kinotrakt/kinotrakt/audit",
        "layers/kinotrakt/kinotrakt/storage",
        "cli/kinotrakt_cli",
        "devkit",
    ):
        root = PurePosixPath(package)
        children = {path.relative_to(root).parts[0] for path in tracked() if root in path.parents}
        wanted += [
            child if child.endswith(".py") else f"{child}/"
            for child in children
            if not child.startswith("__") and (child.endswith(".py") or root / child in tracked_dirs())
        ]
    # Then the Layout names each: a directory at the start of a path, a module on its own or at the end of one
    unnamed = [name for name in top if not any(code.startswith(name) for code in named)]
    unnamed += sorted(
        name for name in set(wanted) if not any(code == name or code.endswith("/" + name) for code in named)
    )
    assert not unnamed, f"README's Layout does not name {unnamed}"


def test_the_contract_lists_every_setting_and_the_architecture_every_item_kind() -> None:
    # Given the contract's environment table with the README's configuration table, and the table's item kinds
    contract = read(PurePosixPath("docs/contract.md")) or ""
    readme = read(PurePosixPath("README.md")) or ""
    architecture = read(PurePosixPath("docs/ARCHITECTURE.md")) or ""
    table_module = read(PurePosixPath("layers/kinotrakt/kinotrakt/storage/dynamo/table.py")) or ""
    documented = variables_in(section(contract, "## Environment variables")) | variables_in(
        section(readme, "## Configuration")
    )
    # Then every variable Settings reads is documented, and every documented one is read (or is boto3's own)
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented == set()
    assert documented - settings == {"AWS_ENDPOINT_URL"}
    # And every item kind the table holds is in the architecture's storage section
    kinds = set(re.findall(r"``<acct>#(\w+)``", table_module))
    assert kinds, "table.py lists no item kinds"
    storage = section(architecture, "## Storage")
    assert {kind for kind in kinds if f"`<acct>#{kind} /" not in storage} == set()
