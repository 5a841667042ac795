"""MkDocs hook: benchmark tables shown from the files the benchmarks wrote.

A page line ``<!-- results: benchmarks/results/anomaly/novelty-5seeds.md | Novelty -->`` is
replaced, when the site is built, by that file's tables (``benchmarks/anomaly.py --out``): its
first line (the setting and seeds) is dropped and each ``## design half (14 tables)`` heading
becomes ``#### Novelty: Design half (14 tables)``. The numbers then live in one place, the
results file, and every page that shows them shows the same ones. A missing file fails the
build.
"""

from __future__ import annotations

import re
from pathlib import Path

MARKER = re.compile(r"^<!-- results: (?P<path>\S+) \| (?P<label>[^>]+?) -->$", re.M)
ROOT = Path(__file__).resolve().parents[2]


def tables(path: str, label: str) -> str:
    """The tables of one results file, its headings one level below the page's ``###``."""
    source = ROOT / path
    if not source.is_file():
        raise FileNotFoundError(f"results file {path!r} (named in a docs page) does not exist")
    lines = source.read_text().splitlines()[1:]  # the first line: "setting ..., seeds [...]"
    out = []
    for line in lines:
        if line.startswith("## "):
            heading = line[3:]
            line = f"#### {label}: {heading[0].upper()}{heading[1:]}"
        out.append(line)
    return "\n".join(out).strip("\n")


def expand(markdown: str) -> str:
    return MARKER.sub(lambda m: tables(m["path"], m["label"].strip()), markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return expand(markdown)
