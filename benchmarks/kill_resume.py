"""SIGKILL a training run at random moments, resume it, and compare with an uninterrupted run.

The run raises findings: a deep sigmoid network trained by plain SGD, without the PCA start,
diagnostics every 20 steps, the doctor's auto-fix on (vanishing gradients; worse than PCA).
Each trial starts ``aekit train`` in a fresh folder, kills it with SIGKILL at a random moment
of the training proper (every fourth trial: resumes it and kills it again while a checkpoint is
written but not yet renamed, through the ``AEKIT_TEST_SLOW_CHECKPOINT`` hook), resumes it to the
end, and checks against the uninterrupted run:

- the final weights, bitwise;
- ``metrics.jsonl``: every epoch once, in order, and the same diagnostics samples;
- ``summary.json``: the same findings (kind, severity, step, message and evidence numbers) and
  the same events (kind and step).

A trial whose run had ended before the kill arrived proves nothing and counts as a failure.

    PYTHONPATH=src python benchmarks/kill_resume.py --kills 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
SLOW_ENV = "AEKIT_TEST_SLOW_CHECKPOINT"
TOTAL_STEPS = 540  # 12 epochs of ceil(1417 / 32) = 45 steps (digits less the test and val rows)
ARGS = ["--data", "digits", "--hidden", "64,48,32,24", "--latent-dim", "8",
        "--activation", "sigmoid", "--optimizer", "sgd", "--lr", "0.1", "--schedule", "constant",
        "--no-pca-init", "--diagnostics-every-steps", "20", "--auto-fix", "--epochs", "12",
        "--batch-size", "32", "--checkpoint-every-steps", "10", "--threads", "1",
        "--no-progress", "--seed", "1"]


def start(out: Path, *extra: str, slow: bool = False) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    env.pop(SLOW_ENV, None)
    if slow:
        env[SLOW_ENV] = "30"
    return subprocess.Popen([sys.executable, "-m", "aekit", "train", *ARGS, "--out", str(out),
                             *extra], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def newest_step(out: Path) -> int:
    """Step of the newest checkpoint in ``out`` (-1: none yet)."""
    names = [p.name for p in out.glob("checkpoint-*.safetensors")] if out.exists() else []
    return max((int(n[11:21]) for n in names), default=-1)


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return wa.keys() == wb.keys() and all(
        wa[k].dtype == wb[k].dtype and wa[k].numpy().tobytes() == wb[k].numpy().tobytes()
        for k in wa)


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def epoch_steps(run: Path) -> list[tuple[int, int]]:
    return [(r["epoch"], r["step"]) for r in records(run) if r.get("type") == "epoch"]


def diagnostics(run: Path) -> list[dict]:
    return [r for r in records(run) if r.get("type") == "diagnostics"]


def outcome(run: Path) -> tuple[list[dict], list[tuple[str, int]]]:
    """The findings whole and the events' (kind, step) of ``summary.json``."""
    summary = json.loads((run / "summary.json").read_text())
    return summary["findings"], [(e["kind"], e["step"]) for e in summary["events"]]


def describe(findings: list[dict], events: list[tuple[str, int]]) -> str:
    found = ", ".join(f"{f['kind']}/{f['severity']}@{f['step']}" for f in findings)
    return f"findings [{found}], events {events}"


def finding_differences(found: list[dict], want: list[dict]) -> str:
    """Which finding differs, and in which field or evidence number (the first few)."""
    if [(f["kind"], f["severity"], f["step"]) for f in found] != \
            [(f["kind"], f["severity"], f["step"]) for f in want]:
        return f"{describe(found, [])} vs {describe(want, [])}"
    out = []
    for got, ref in zip(found, want):
        keys = sorted(set(got["evidence"]) | set(ref["evidence"]))
        out += [f"{got['kind']}.evidence.{k}: {got['evidence'].get(k)!r:.60} vs "
                f"{ref['evidence'].get(k)!r:.60}" for k in keys
                if got["evidence"].get(k) != ref["evidence"].get(k)]
        if got["message"] != ref["message"]:
            out.append(f"{got['kind']}.message")
    return "; ".join(out[:3])


def compare(out: Path, baseline: Path) -> list[str]:
    """What differs from the uninterrupted run (empty: nothing)."""
    problems = []
    if not same_weights(out, baseline):
        problems.append("weights differ")
    if epoch_steps(out) != epoch_steps(baseline):
        problems.append("epochs differ")
    if diagnostics(out) != diagnostics(baseline):
        problems.append("diagnostics samples differ")
    (found, events), (want_found, want_events) = outcome(out), outcome(baseline)
    if found != want_found:
        problems.append(f"findings differ: {finding_differences(found, want_found)}")
    if events != want_events:
        problems.append(f"events differ: {events} vs {want_events}")
    return problems


def trial(out: Path, baseline: Path, rng: random.Random, slow: bool) -> str:
    """One kill and resume; returns a one-line description (starts with 'match' on success)."""
    proc = start(out)
    # a random moment of the training proper: past a random step, then a random delay (not
    # so late that the run could end before the kill)
    target = rng.randrange(1, TOTAL_STEPS - 40)
    while newest_step(out) < target and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.1))
    moment = f"past step {target}"
    if slow:  # then resumed and killed while its first checkpoint is written, not yet renamed
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        proc = start(out, "--resume", slow=True)
        while not any(out.glob(".checkpoint-*.tmp")) and proc.poll() is None:
            time.sleep(0.01)
        moment += ", resumed, killed again during a checkpoint write"
    finished = proc.poll() is not None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    if finished or (out / "summary.json").exists():
        return "FAIL: the run ended before the kill (the trial proves nothing)"
    ckpts = sorted(p.name for p in out.glob("checkpoint-*.safetensors")) if out.exists() else []
    resumed = start(out, "--resume")
    _, err = resumed.communicate()
    if resumed.returncode != 0:
        return f"FAIL resume exit {resumed.returncode}: {err.strip()[-200:]}"
    problems = compare(out, baseline)
    last = ckpts[-1] if ckpts else "no checkpoint yet"
    verdict = "match" if not problems else "MISMATCH (" + "; ".join(problems) + ")"
    return f"{verdict}: killed {moment}, newest checkpoint {last}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="aekit-kill-"))
    try:
        baseline = work / "baseline"
        t0 = time.monotonic()
        proc = start(baseline)
        _, err = proc.communicate()
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            print(f"baseline failed: {err}")
            return 1
        train = json.loads((baseline / "summary.json").read_text())["train_seconds"]
        print(f"uninterrupted run: {wall:.1f}s wall, {train:.1f}s of training, "
              f"{len(diagnostics(baseline))} diagnostics samples; {describe(*outcome(baseline))}")
        matched = 0
        for k in range(args.kills):
            line = trial(work / f"trial-{k}", baseline, rng, slow=k % 4 == 3)
            matched += line.startswith("match")
            print(f"kill {k + 1:2d}: {line}", flush=True)
        print(f"{matched}/{args.kills} killed-and-resumed runs ended as the uninterrupted run: "
              "weights bitwise, metrics.jsonl epochs and diagnostics, summary.json findings "
              "and events")
        return 0 if matched == args.kills else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
