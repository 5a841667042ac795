"""How fast the ``aekit`` command answers when it has no real work to do.

Times, in fresh processes, ``python -c "import torch"`` and ``aekit --help``,
``aekit train --help``, ``aekit --version`` and ``aekit train --bogus`` (an argument error),
and prints each time and its ratio to the PyTorch import. The command line builds its parser
without importing PyTorch or any other heavy module, so each of these should take a small
fraction of the import (the goal: at most 0.3x). Runs are interleaved and repeated, and the
fastest repeat counts, to damp the noise of a shared machine.

    python benchmarks/cli_speed.py               # 5 repeats
    python benchmarks/cli_speed.py --repeats 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time

GOAL = 0.3  # each case at most this fraction of `import torch`


def aekit_command() -> list[str]:
    """The installed ``aekit`` script beside this Python, else ``python -m aekit``."""
    script = os.path.join(os.path.dirname(sys.executable), "aekit")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return [script]
    found = shutil.which("aekit")
    return [found] if found else [sys.executable, "-m", "aekit"]


def cases() -> dict[str, list[str]]:
    aekit = aekit_command()
    return {
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "aekit --help": [*aekit, "--help"],
        "aekit train --help": [*aekit, "train", "--help"],
        "aekit --version": [*aekit, "--version"],
        "aekit train --bogus": [*aekit, "train", "--bogus"],
    }


def seconds(command: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each case (default: 5)")
    args = parser.parse_args()
    commands = cases()
    subprocess.run(commands["python -c 'import torch'"], check=True)  # warm the file cache
    best = {name: float("inf") for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            best[name] = min(best[name], seconds(command))
    torch_seconds = best["python -c 'import torch'"]
    print(f"fastest of {args.repeats} runs each (goal: each aekit case <= {GOAL}x import torch)")
    print(f"{'case':<28} {'seconds':>8} {'x torch':>8}")
    slow = []
    for name, value in best.items():
        ratio = value / torch_seconds
        print(f"{name:<28} {value:>8.3f} {ratio:>8.2f}")
        if name.startswith("aekit") and ratio > GOAL:
            slow.append(name)
    if slow:
        print(f"over the goal: {', '.join(slow)}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
