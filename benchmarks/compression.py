"""Rate-distortion on the Fashion-MNIST test set: aekit vs PCA (same quantizer and coder) vs
PNG and JPEG (Pillow).

    python benchmarks/compression.py --model /tmp/fm30 --out benchmarks/out

Sizes are whole files: the ``.aez`` file for aekit and PCA (header and checksum included; the
model itself is not counted, as a codec's tables are not), the sum of one file per image for PNG
and JPEG, and one PNG of all images side by side (a mosaic, kinder to PNG). Errors are MSE on
pixels scaled to [0, 1] and PSNR with peak 1. Prints a Markdown table and writes
``compression.md`` and ``compression.png`` to ``--out``. Not a test.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from aekit.api import Autoencoder
from aekit.apps.codec import encode_file, quantize
from aekit.apps.compress import compress_array, psnr
from aekit.baselines.pca import fit_pca
from aekit.data import load


def row(method: str, setting: str, n_bytes: int, n_pixels: int, mse: float) -> dict:
    return {"method": method, "setting": setting, "bytes": n_bytes,
            "bpp": 8 * n_bytes / n_pixels, "mse": mse, "psnr": psnr(mse)}


def aekit_rows(ae: Autoencoder, x: np.ndarray, bits_list: list[int]) -> list[dict]:
    out = []
    for bits in bits_list:
        blob, rep = compress_array(ae, x, bits)
        out.append(row(f"aekit AE-{rep.latent_dim}", f"{bits} bits/code", len(blob), x.size,
                       rep.mse))
    return out


def pca_rows(train01: np.ndarray, test01: np.ndarray, ks: list[int], bits_list: list[int]
             ) -> list[dict]:
    out = []
    for k in ks:
        pca = fit_pca(train01, k, 0)
        codes = pca.transform(test01)
        for bits in bits_list:
            q = quantize(codes, bits)
            blob = encode_file(q, (28, 28), "image", "0" * 64, None)
            x_hat = pca.inverse_transform(q.dequantize().astype(np.float64)).clip(0, 1)
            mse = float(np.mean((x_hat - test01) ** 2))
            out.append(row(f"PCA-{k}", f"{bits} bits/code", len(blob), test01.size, mse))
    return out


def pillow_rows(images: np.ndarray) -> list[dict]:
    from PIL import Image

    ref = images.astype(np.float64) / 255.0
    total = sum(len(_encode(Image.fromarray(im), "PNG", optimize=True)) for im in images)
    out = [row("PNG", "one file per image", total, images.size, 0.0)]
    n = len(images)
    cols = 100
    mosaic = images.reshape(n // cols, cols, 28, 28).transpose(0, 2, 1, 3).reshape(
        n // cols * 28, cols * 28)
    out.append(row("PNG", "one mosaic of all", len(_encode(Image.fromarray(mosaic), "PNG",
                                                           optimize=True)), images.size, 0.0))
    for quality in (10, 25, 50, 75, 90):
        total, sq = 0, 0.0
        for im, r in zip(images, ref):
            data = _encode(Image.fromarray(im), "JPEG", quality=quality)
            total += len(data)
            back = np.asarray(Image.open(io.BytesIO(data)), np.float64) / 255.0
            sq += float(np.sum((back - r) ** 2))
        out.append(row("JPEG", f"quality {quality}, per image", total, images.size,
                       sq / images.size))
    return out


def _encode(image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def table(rows: list[dict]) -> str:
    lines = ["| method | setting | bytes | bits/pixel | MSE | PSNR dB |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        p = "inf (lossless)" if math.isinf(r["psnr"]) else f"{r['psnr']:.2f}"
        lines.append(f"| {r['method']} | {r['setting']} | {r['bytes']} | {r['bpp']:.3f} | "
                     f"{r['mse']:.5f} | {p} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100)
    ax = fig.add_subplot()
    for method in dict.fromkeys(r["method"] for r in rows):
        pts = [(r["bpp"], r["mse"]) for r in rows if r["method"] == method and r["mse"] > 0]
        if pts:
            ax.plot(*zip(*sorted(pts)), "o-", label=method)
    for r in rows:
        if r["method"] == "PNG":
            ax.axvline(r["bpp"], color="gray", linestyle=":", label=f"PNG lossless "
                       f"({r['setting']})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("bits per pixel (log)")
    ax.set_ylabel("MSE, pixels in [0, 1] (log)")
    ax.set_title("Fashion-MNIST test set: rate vs distortion")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model folder trained on fashion-mnist")
    p.add_argument("--out", default="benchmarks/out", help="folder for the table and plot")
    p.add_argument("--bits", default="4,6,8,10,12", help="bits per code value to try")
    p.add_argument("--pca-sizes", default="30,60,100", help="PCA components to try")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    bits_list = [int(b) for b in args.bits.split(",")]
    ae = Autoencoder.load(args.model)
    test = load("fashion-mnist:test")
    train01 = load("fashion-mnist").x / 255.0
    test01 = test.x / 255.0
    rows = aekit_rows(ae, test.x, bits_list)
    rows += pca_rows(train01, test01, [int(k) for k in args.pca_sizes.split(",")], [8])
    rows += pca_rows(train01, test01, [ae.config.model.latent_dim],
                     [b for b in bits_list if b != 8])
    rows += pillow_rows(test.x.astype(np.uint8).reshape(-1, 28, 28))
    text = table(rows)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compression.md").write_text(text + "\n")
    plot(rows, out / "compression.png")
    print(f"wrote {out / 'compression.md'} and {out / 'compression.png'} "
          f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
