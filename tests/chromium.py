"""Headless Chromium for the tests that render HTML (the report, the documentation site)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                        else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium(args: list[str], profile: Path, height: int = 1600) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile folder; its output, text."""
    return subprocess.run([CHROMIUM, *FLAGS, f"--window-size=1200,{height}",
                           f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def render(url: str, folder: Path, height: int = 1600
           ) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Screenshot ``url`` (checked: a PNG, not a blank page) and dump its DOM (checked: exit
    0); both runs' results, for the caller's checks of the page and the console."""
    shot = folder / "page.png"
    result = chromium([f"--screenshot={shot}", url], folder / "profile1", height)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.std() > 10  # not a blank page
    dom = chromium(["--dump-dom", url], folder / "profile2", height)
    assert dom.returncode == 0, dom.stderr[-2000:]
    return result, dom
