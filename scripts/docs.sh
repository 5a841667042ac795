#!/usr/bin/env bash
# Builds the documentation site into build/docs/ (open build/docs/index.html).
#   scripts/docs.sh            install the `docs` extra into .venv if missing, then build
#   scripts/docs.sh --serve    the same, then serve it with live reload on 127.0.0.1:8000
# The build is strict: any warning (a broken link or anchor, a page missing from the nav, a
# docstring the API reference cannot read, a gallery example that fails) fails it. The
# command-line reference and the examples gallery are generated during the build
# (docs/hooks/); the examples run on small data, about 10 s each on 2 cores, and their results
# are kept in build/docs-cache/ until the script or aekit's source changes (delete it to rerun).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || scripts/setup.sh
export NO_MKDOCS_2_WARNING=1  # Material's banner about MkDocs 2.0: not about this site
if ! .venv/bin/python -c "import mkdocs, material, mkdocstrings_handlers.python, ruff" 2>/dev/null; then
  echo "installing the docs tools (pip install -e '.[docs]')"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[docs]"
fi
if [ "${1:-}" = "--serve" ]; then
  exec .venv/bin/python -m mkdocs serve --strict
fi
start=$(date +%s)
.venv/bin/python -m mkdocs build --strict --clean
pages=$(find build/docs -name '*.html' -not -name '404.html' | wc -l)
echo "docs: build/docs/index.html ($pages pages) in $(( $(date +%s) - start )) s"
