"""The documentation: its runnable examples run, the README's links land, the built site renders.

Convention: a ```python block in ``docs/**/*.md`` preceded by the line ``<!-- test: run -->``
(invisible on GitHub and in the site) is run here, the blocks of one page in order and in one
namespace, inside a temporary folder. Such blocks use small data (the digits, a few epochs) so
that all of them take seconds. The other blocks show longer runs with their real output.

The site itself is built by ``scripts/docs.sh`` (CI runs it after the tests; it takes about a
minute, the gallery examples included). When ``build/docs/index.html`` exists and Chromium is
installed, the last tests open the built pages in headless Chromium.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from chromium import CHROMIUM, chromium, render

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SITE = ROOT / "build" / "docs"
MARK = "<!-- test: run -->"



def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block marked with ``MARK``.

    Raises:
        ValueError: a marker is not directly followed by a ```python block.
    """
    lines = text.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARK:
            continue
        if i + 1 >= len(lines) or lines[i + 1].strip() != "```python":
            raise ValueError(f"line {i + 1}: {MARK} must be followed by a ```python line")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise ValueError(f"line {i + 2}: the ```python block is never closed")
        blocks.append((i + 3, "\n".join(lines[i + 2:end])))
    return blocks


def pages_with_blocks() -> list[Path]:
    return [p for p in sorted(DOCS.rglob("*.md"))
            if MARK in (line.strip() for line in p.read_text(encoding="utf-8").splitlines())]


def test_runnable_blocks_are_found_and_well_formed() -> None:
    pages = pages_with_blocks()
    names = {p.relative_to(DOCS).as_posix() for p in pages}
    assert {"getting-started.md", "guide/python.md", "guide/detect.md"} <= names
    for page in pages:
        assert runnable_blocks(page.read_text(encoding="utf-8")), page
    with pytest.raises(ValueError, match="must be followed"):
        runnable_blocks(f"{MARK}\n\n```python\nx = 1\n```\n")


@pytest.mark.parametrize("page", pages_with_blocks(),
                         ids=lambda p: p.relative_to(DOCS).as_posix())
def test_runnable_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture) -> None:
    import torch

    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    namespace: dict = {"__name__": "__docs__"}
    try:
        for line, code in runnable_blocks(page.read_text(encoding="utf-8")):
            rel = page.relative_to(ROOT).as_posix()
            exec(compile(code, f"{rel}:{line}", "exec"), namespace)  # noqa: S102
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()


def test_readme_links_into_the_docs_land() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs|scripts)/[^)#\s]*)(?:#[^)]*)?\)", text)
    assert len(links) >= 15, links
    for link in links:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_readme_is_a_front_page_with_the_quickstart() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    assert "## Quickstart\n\n```bash\nscripts/setup.sh && .venv/bin/aekit train --out " \
           "runs/quickstart\nscripts/setup.sh --test && .venv/bin/python -m pytest\n```" in text
    assert "scripts/docs.sh" in text


def test_every_page_is_in_the_nav() -> None:
    """mkdocs checks this too, but only where the docs tools are installed."""
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in sorted(DOCS.rglob("*.md")):
        rel = page.relative_to(DOCS).as_posix()
        assert f" {rel}\n" in nav, f"{rel} is not in the nav of mkdocs.yml"


def test_results_markers_expand_to_the_benchmarks_tables() -> None:
    """A page's ``<!-- results: FILE | Label -->`` line becomes FILE's tables when the site is
    built (docs/hooks/results_tables.py): every one names a results file with both halves."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("results_tables",
                                                  DOCS / "hooks" / "results_tables.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    found = 0
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for match in hook.MARKER.finditer(text):
            found += 1
            label = match["label"].strip()
            expanded = hook.expand(match[0])
            assert f"#### {label}: Design half" in expanded, (page, match[0])
            assert f"#### {label}: Confirmation half" in expanded, (page, match[0])
            assert "| **mean** |" in expanded and "setting " not in expanded.splitlines()[0]
        assert not re.search(r"<!-- results:(?! \S+ \| [^>]+ -->)", text), \
            f"{page.name}: a malformed results marker"
    assert found >= 4
    with pytest.raises(FileNotFoundError, match="no-such.md"):
        hook.expand("<!-- results: benchmarks/results/no-such.md | X -->")


def test_cli_reference_lists_every_verb() -> None:
    """The generated command-line reference has a section, usage and options for each verb."""
    import sys

    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        from cli_reference import cli_markdown
    finally:
        sys.path.remove(str(DOCS / "hooks"))
    import argparse

    from aekit.cli import build_parser

    text = cli_markdown()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert len(sub.choices) >= 10
    for verb in sub.choices:
        assert f"## aekit {verb} {{#aekit-{verb}}}" in text
        assert f"usage: aekit {verb}" in text
    assert "`--latent-dim LATENT_DIM`" in text and "`--balance BALANCE`" in text


# -- the built site ---------------------------------------------------------------------------

needs_site = pytest.mark.skipif(not (SITE / "index.html").is_file(),
                                reason="the site is not built (scripts/docs.sh)")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                    "(Debian package `chromium`); the CI set-up installs it")


@needs_site
def test_built_site_has_the_pages_and_their_images() -> None:
    pages = [p for p in SITE.rglob("*.html") if p.name != "404.html"]
    assert len(pages) >= 10
    for name in ("index.html", "reference/cli.html", "reference/api/autoencoder.html",
                 "examples/index.html", "faq.html", "benchmarks.html"):
        assert (SITE / name).is_file(), name
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for src in re.findall(r'<img[^>]+src="([^"]+)"', html):
            if not src.startswith(("http:", "https:", "data:")):
                assert (page.parent / src.split("#")[0]).resolve().is_file(), (page, src)


def _console(result: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]


@needs_site
@needs_chromium
def test_built_index_renders_in_headless_chromium(tmp_path: Path) -> None:
    result, dom = render((SITE / "index.html").as_uri(), tmp_path)
    assert '<h1 id="aekit">' in dom.stdout and "Getting started" in dom.stdout
    assert _console(result) + _console(dom) == []


@needs_site
@needs_chromium
@pytest.mark.parametrize("name", ["reference/cli.html", "reference/api/autoencoder.html",
                                  "examples/index.html"])
def test_generated_pages_render_without_console_errors(name: str, tmp_path: Path) -> None:
    dom = chromium(["--dump-dom", (SITE / name).as_uri()], tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1" in dom.stdout and len(dom.stdout) > 5000
    assert _console(dom) == []
