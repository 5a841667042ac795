#!/usr/bin/env bash
# Sets up aekit in ./.venv: PyTorch's CPU build (torch==2.13.0), then aekit itself.
#   scripts/setup.sh          what `aekit train` needs
#   scripts/setup.sh --test   also the test tools, and (as root, with apt) Debian's
#                             Fashion-MNIST files and Chromium, which some tests use
# Safe to run again: what is already there is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# The CPU build first: a plain `torch` requirement could pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || "${PIP[@]}" "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  "${PIP[@]}" -e ".[test]"
  missing=()
  [ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)
  command -v chromium >/dev/null || missing+=(chromium)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing ${missing[*]} (apt-get)"
      apt-get update -qq >/dev/null && \
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || echo "warning: apt-get could not install ${missing[*]}; tests that need them skip"
    else
      echo "note: ${missing[*]} not installed (needs root and apt-get); tests that need them skip"
    fi
  fi
else
  "${PIP[@]}" -e .
fi
