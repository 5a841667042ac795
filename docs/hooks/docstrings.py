"""MkDocs hook: Sphinx cross-reference roles in docstrings shown as plain code.

aekit's docstrings are Google style and sometimes name other objects with Sphinx roles
(``:class:`Dataset```, ``:meth:`fit```, ``:mod:`~aekit.pipeline.classes```). mkdocstrings
renders the backquoted part as code and leaves the role in front of it as text; this hook
drops the role (and Sphinx's ``~`` shortening mark) from the rendered API pages.
"""

from __future__ import annotations

import re

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|data|attr|exc|obj):(<code>)~?")


def on_page_content(html: str, page, config, files) -> str:
    if page.file.src_uri.startswith("reference/api/"):
        return ROLE.sub(r"\1", html)
    return html
