"""Out-of-core training: peak memory and throughput against the in-memory path.

Writes a float32 .npy several times larger than a memory limit this script sets for itself
(default 512 MB, file 2.2 GB: 4.3x), trains one epoch on it with `aekit train` streaming it in
chunks, and checks that the training process's peak resident memory (VmHWM, which includes
PyTorch itself: about 300 MB after `import torch` and scikit-learn) stayed below the limit.
For comparison, a smaller file is trained on in memory and streamed. Each run is a fresh
subprocess, so each peak is its own. Not a test; timings on a shared machine are noisy.

    python benchmarks/out_of_core.py [--limit-mb 512] [--file-mb 2200] [--dir /tmp]

RLIMIT_AS is not used as the limit: PyTorch reserves far more virtual address space than it
ever touches, so an address-space limit breaks `import torch` long before memory runs out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

N_FEATURES = 784  # a Fashion-MNIST-sized row: 3136 bytes
ROWS_PER_WRITE = 16384


def write_npy(path: Path, megabytes: int, seed: int = 0) -> int:
    """A (n, 784) float32 file of about ``megabytes`` MB, written block by block."""
    n_rows = megabytes * 2**20 // (N_FEATURES * 4)
    header = {"descr": "<f4", "fortran_order": False, "shape": (n_rows, N_FEATURES)}
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(16, N_FEATURES)).astype(np.float32)  # low-rank: learnable
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n_rows, ROWS_PER_WRITE):
            rows = min(ROWS_PER_WRITE, n_rows - start)
            codes = rng.normal(size=(rows, 16)).astype(np.float32)
            f.write((codes @ basis).astype(np.float32).tobytes())
    return n_rows


def child(path: str, out_dir: str) -> None:
    """Train one epoch on ``path`` (in this process) and print peak memory and throughput."""
    from aekit.config import RunConfig
    from aekit.runner import train_run

    cfg = RunConfig().replace(data=path, hidden=(64,), latent_dim=8, epochs=1,
                              batch_size=256, threads=1, progress=False, test_split=0.0,
                              diagnostics_every_steps=None, checkpoint_every_steps=None)
    t0 = time.perf_counter()
    summary = train_run(cfg, out_dir)
    status = Path("/proc/self/status").read_text()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({"peak_rss_mb": peak_kb / 1024, "samples_per_second":
                      summary["samples_per_second"], "wall_seconds": time.perf_counter() - t0,
                      "out_of_core": bool(summary.get("out_of_core")),
                      "final_train_loss": summary["final_train_loss"]}))


def run_child(path: Path, stream: bool, chunk_mb: int, out_dir: Path) -> dict:
    env = dict(os.environ, AEKIT_OUT_OF_CORE="1" if stream else "0",
               AEKIT_OUT_OF_CORE_CHUNK_BYTES=str(chunk_mb * 2**20), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--child", str(path), str(out_dir)],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit-mb", type=int, default=512)
    parser.add_argument("--file-mb", type=int, default=2200)
    parser.add_argument("--small-mb", type=int, default=200)
    parser.add_argument("--chunk-mb", type=int, default=16)
    parser.add_argument("--dir", default=None, help="where to write the files (deleted after)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="aekit-ooc-") as tmp:
        big, small = Path(tmp) / "big.npy", Path(tmp) / "small.npy"
        n_big = write_npy(big, args.file_mb)
        n_small = write_npy(small, args.small_mb, seed=1)
        size_mb = big.stat().st_size / 2**20
        print(f"memory limit {args.limit_mb} MB; big file {size_mb:.0f} MB ({n_big} x "
              f"{N_FEATURES} float32, {size_mb / args.limit_mb:.1f}x the limit); small file "
              f"{small.stat().st_size / 2**20:.0f} MB ({n_small} rows); chunks of "
              f"{args.chunk_mb} MB; 1 epoch, 1 thread, 784-64-8-64-784 MLP")
        rows = [("in memory", small, False), ("streamed", small, True),
                ("streamed", big, True)]
        print(f"{'path':<10} {'file':>8} {'peak RSS':>10} {'samples/s':>10} {'wall s':>8}")
        results = []
        for name, path, stream in rows:
            r = run_child(path, stream, args.chunk_mb, Path(tmp) / f"run-{len(results)}")
            results.append(r)
            print(f"{name:<10} {path.stat().st_size / 2**20:>6.0f}MB {r['peak_rss_mb']:>8.0f}MB "
                  f"{r['samples_per_second']:>10.0f} {r['wall_seconds']:>8.1f}")
        ratio = results[1]["samples_per_second"] / results[0]["samples_per_second"]
        print(f"streamed / in-memory throughput on the small file: {ratio:.2f}x")
        peak = results[2]["peak_rss_mb"]
        ok = peak < args.limit_mb
        print(f"peak memory on the big file: {peak:.0f} MB "
              f"{'<' if ok else '>='} limit {args.limit_mb} MB: {'OK' if ok else 'EXCEEDED'}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
