"""Denoising on Fashion-MNIST: aekit's denoiser against PCA's projection of the noisy images and
against the noisy images themselves.

For each noise (Gaussian sigma 0.3, 50% masking; pixels in [0, 1]), ``aekit train --data
fashion-mnist --test fashion-mnist:test --latent-dim 30 --noise KIND:AMOUNT`` (the CLI, in a
subprocess): fresh noise at every training step, the clean images as the target. From its
``summary.json``: the error to the clean test images (squared error per image, pixels in
[0, 1]) of the denoiser's output, of PCA-30's projection of the same noisy test images (PCA
fitted on the clean training images), and of the noisy images. As a control, the plain
model (trained without noise) is scored on the same noisy images with ``aekit evaluate
--noise``. A picture per noise: clean, noisy, aekit, PCA (``--pictures DIR``).

    python benchmarks/denoising.py --work /tmp/denoise --pictures docs/images

Acceptance: at Gaussian 0.3 the denoiser's error is below both PCA's and the noisy input's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NOISES = ("gaussian:0.3", "mask:0.5")


def aekit(*args: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "aekit", *args], capture_output=True, text=True,
                          cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"aekit {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout, time.perf_counter() - t0


def picture(run: Path, noise: str, out: Path, seed: int = 0) -> None:
    """clean / noisy / aekit / PCA rows for 10 test images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import aekit as ae_lib
    from aekit.data import load
    from aekit.pipeline import prepare_spec
    from aekit.training.noise import TEST_STREAM, corrupt_array

    ae = ae_lib.load(run)
    test = load("fashion-mnist:test")
    pick = np.arange(0, 10_000, 1000)
    x = ae.scaler.transform(test.x)
    noisy_all = corrupt_array(x, noise, ae.config.train.seed, TEST_STREAM,
                              ae.scaler.output_range)  # the summary's corruption
    noisy = noisy_all[pick]
    pca = prepare_spec(ae.config.replace(noise=None)).pca
    rows = {"clean": x[pick], f"noisy ({noise})": noisy,
            "aekit denoiser": np.clip(ae.reconstruct_scaled(noisy), 0, 1),
            "PCA-30 projection": np.clip(pca.inverse_transform(pca.transform(noisy)), 0, 1)}
    fig, axes = plt.subplots(len(rows), len(pick), figsize=(len(pick), len(rows) * 1.1))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(len(pick)):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--pictures", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    common = ["--data", "fashion-mnist", "--test", "fashion-mnist:test", "--latent-dim", "30",
              "--no-progress", "--labels", "none"]
    if args.threads:
        common += ["--threads", str(args.threads)]
    plain = args.work / "plain"
    _, plain_wall = aekit("train", *common, "--out", str(plain))
    print("| noise | aekit denoiser | PCA-30 of the noisy images | the noisy images | "
          "plain model (trained without noise) | denoiser / PCA | training s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    results = []
    for noise in NOISES:
        run = args.work / noise.replace(":", "-")
        _, wall = aekit("train", *common, "--noise", noise, "--out", str(run))
        s = json.loads((run / "summary.json").read_text())
        out, _ = aekit("evaluate", "--model", str(plain), "--data", "fashion-mnist:test",
                       "--noise", noise, "--labels", "none")
        control = json.loads(out)
        row = {"noise": noise, "aekit": s["denoise_test_sse_per_sample"],
               "pca": s["pca_denoise_test_sse_per_sample"],
               "noisy": s["noisy_test_sse_per_sample"],
               "plain": control["denoise_sse_per_sample"], "train_seconds": s["train_seconds"],
               "clean_test_error": s["test_sse_per_sample"]}
        results.append(row)
        print(f"| {noise} | {row['aekit']:.2f} | {row['pca']:.2f} | {row['noisy']:.2f} | "
              f"{row['plain']:.2f} | {row['aekit'] / row['pca']:.2f}x | "
              f"{row['train_seconds']:.0f} |", flush=True)
        if args.pictures:
            args.pictures.mkdir(parents=True, exist_ok=True)
            picture(run, noise, args.pictures / f"denoising-{noise.split(':')[0]}.png")
    (args.work / "denoising.json").write_text(json.dumps(results, indent=2))
    g = results[0]
    ok = g["aekit"] < g["pca"] and g["aekit"] < g["noisy"]
    print(f"acceptance (gaussian:0.3: aekit below PCA and the noisy images): "
          f"{'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
