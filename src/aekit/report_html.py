"""The HTML pieces of aekit's self-contained reports (``aekit report``, ``aekit detect
--report``): escaping, tables, plot boxes, notes, inline PNGs and the page with its CSS and the
script that marks whether every plot decoded."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

_CSS = """
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:1em 2em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:.25em .6em;
text-align:left;font-size:.92em} th{background:#f4f4f4} .note{color:#666;font-style:italic}
.grid{display:flex;flex-wrap:wrap;gap:1em} .grid .plot{flex:1 1 480px} .plot svg,.plot img{max-width:100%;height:auto}
.finding{border-left:4px solid #c90;padding:.3em .8em;margin:.4em 0;background:#fff8e6}
.finding.error,.finding.critical{border-color:#c22;background:#fdecec}
.finding.info{border-color:#27a;background:#eef6fb} .good{color:#174} .bad{color:#a22}
"""

_JS = """
window.aekitErrors = [];
window.addEventListener('error', function (e) { window.aekitErrors.push(String(e.message)); });
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.querySelectorAll('.plot img'));
  var broken = imgs.filter(function (im) { return !im.complete || im.naturalWidth === 0; });
  var svgs = document.querySelectorAll('.plot svg').length;
  document.body.setAttribute('data-plots', String(imgs.length - broken.length + svgs));
  document.body.setAttribute('data-broken', String(broken.length));
  document.body.setAttribute('data-errors', String(window.aekitErrors.length));
  document.body.setAttribute('data-rendered', broken.length === 0 ? 'ok' : 'broken');
});
"""


def escape(value: Any) -> str:
    """``value`` as text, HTML-escaped."""
    return html.escape(str(value))


def format_value(value: Any) -> str:
    """A value as a table shows it (floats to 4 significant digits, lists joined)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def html_table(rows: list[tuple[Any, ...]], header: tuple[str, ...] | None = None) -> str:
    """An HTML table (one tuple per row, any number of columns), values escaped."""
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{escape(format_value(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table>{head}{body}</table>"


def plot_block(inner: str) -> str:
    """A plot (SVG or ``<img>``) in its box."""
    return f'<div class="plot">{inner}</div>'


def note(text: str) -> str:
    """A muted sentence (a section whose inputs are missing says so)."""
    return f'<p class="note">{escape(text)}</p>'


def png_file(path: Path, alt: str) -> str:
    """A PNG file inlined as an ``<img>`` with a base64 data URI."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def html_page(title: str, body: str) -> str:
    """A whole self-contained page: ``body`` (HTML) with the reports' CSS and the script that
    marks, after load, whether every plot decoded (``data-rendered``)."""
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style>"
            f"<script>{_JS}</script></head><body>{body}</body></html>\n")
