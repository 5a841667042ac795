"""Fuzz the loaders of files aekit reads: checkpoints, saved models, compressed ``.aez`` files.

Each target starts from a valid file and feeds mutated copies (bit flips, interesting integers
in length fields, truncation, splices, JSON-aware edits of the header) to the loader. The only
exception allowed to escape is :class:`aekit.errors.FormatError`; anything else is a failure and
is reported with the input's seed. A few hand-made files declare huge sizes; the peak memory of
the process must stay bounded while they are refused.

    PYTHONPATH=src python benchmarks/fuzz.py --seconds 60      # per target
    PYTHONPATH=src python benchmarks/fuzz.py --iterations 2000

The test suite runs a bounded version (``tests/test_fuzz_loaders.py``) through the functions
below.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from aekit.errors import FormatError

INTERESTING = [0, 1, 7, 8, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
               2**40, 2**62, 2**63 - 1, 2**63, 2**64 - 1]


# -- mutations --------------------------------------------------------------------------------
def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        pos = rng.randrange(len(out)) if out else 0
        if op == 0 and out:  # flip a bit
            out[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and out:  # an interesting byte
            out[pos] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, ord("9"), ord('"'), ord("{")])
        elif op == 2:  # an interesting 8- or 4-byte little-endian integer
            value = rng.choice(INTERESTING)
            width = rng.choice([4, 8])
            out[pos:pos + width] = (value % 2 ** (8 * width)).to_bytes(width, "little")
        elif op == 3:  # truncate
            del out[rng.randrange(len(out) + 1):]
        elif op == 4 and out:  # delete a chunk
            del out[pos:pos + rng.randint(1, 64)]
        elif op == 5 and out:  # duplicate a chunk
            chunk = out[pos:pos + rng.randint(1, 64)]
            out[pos:pos] = chunk
        elif op == 6:  # insert random bytes
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 7:  # make a number in a JSON text huge or negative
            out = bytearray(_edit_json_number(bytes(out), rng))
        elif op == 8:  # the header length field (safetensors: first 8 bytes)
            out[0:8] = rng.choice(INTERESTING).to_bytes(8, "little")
    return bytes(out)


def _edit_json_number(data: bytes, rng: random.Random) -> bytes:
    digits = [i for i, b in enumerate(data[:100_000]) if 48 <= b <= 57]
    if not digits:
        return data
    at = rng.choice(digits)
    new = rng.choice([b"99999999999", b"-1", b"1e308", b"0", b"18446744073709551616", b"NaN"])
    return data[:at] + new + data[at + 1:]


# -- targets ----------------------------------------------------------------------------------
def _tiny_autoencoder():
    import aekit

    x = np.random.default_rng(0).normal(size=(24, 5)).astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=2, hidden=(4,), epochs=1, batch_size=8, progress=False,
                           diagnostics_every_steps=None)
    ae.fit(x)
    return ae, x


def checkpoint_target(work: Path) -> tuple[bytes, Callable[[bytes], object]]:
    """A valid checkpoint of a tiny run and a loader of candidate bytes."""
    from aekit.training.checkpoint import Checkpointer, list_checkpoints, load_checkpoint

    ae, _ = _tiny_autoencoder()
    folder = work / "ckpt"
    trainer = ae.trainer
    trainer.checkpoint_timer.checkpointers = [Checkpointer(folder)]
    trainer.checkpoint_timer.save(trainer, trainer.epoch, 0, (0.0, 0, 0))
    seed = list_checkpoints(folder)[0].read_bytes()
    target = work / "checkpoint-0000000001.safetensors"

    def load(data: bytes) -> object:
        target.write_bytes(data)
        return load_checkpoint(target)

    return seed, load


def model_target(work: Path) -> tuple[bytes, Callable[[bytes], object]]:
    """A saved model; the candidate replaces model.safetensors or config.json (by its parity).

    The seed is the two files joined by a marker, so one mutation hits one of them.
    """
    import aekit

    ae, _ = _tiny_autoencoder()
    saved = work / "model-seed"
    ae.save(saved)
    marker = b"\n--AEKIT-FUZZ-SPLIT--\n"
    seed = (saved / "model.safetensors").read_bytes() + marker + \
        (saved / "config.json").read_bytes()
    folder = work / "model"
    folder.mkdir(exist_ok=True)

    def load(data: bytes) -> object:
        weights, _, config = data.partition(marker)
        (folder / "model.safetensors").write_bytes(weights)
        (folder / "config.json").write_bytes(config)
        return aekit.load(folder)

    return seed, load


def codec_target(work: Path) -> tuple[bytes, Callable[[bytes], object]] | None:
    """A valid ``.aez`` file; half the candidates get a correct checksum so parsing goes deep."""
    try:
        from aekit.apps import codec
    except ImportError:
        return None
    codes = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    seed = codec.encode_file(codec.quantize(codes, 8), (5,), "tabular", "ab" * 32)

    def load(data: bytes) -> object:
        if len(data) > 32 and data[-1] % 2 == 0:  # re-seal: the checksum no longer hides bugs
            data = data[:-32] + hashlib.sha256(data[:-32]).digest()
        return codec.decode_file(data)

    return seed, load


TARGETS = {"checkpoint": checkpoint_target, "model": model_target, "codec": codec_target}


def fuzz(seed: bytes, load: Callable[[bytes], object], iterations: int | None = None,
         seconds: float | None = None, rng_seed: int = 0) -> dict[str, object]:
    """Feed mutations of ``seed`` to ``load``; count executions, refusals and failures.

    Returns:
        ``executions``, ``refused`` (FormatError), ``accepted`` (loaded fine), ``failures``
        (a list of ``(iteration, exception repr)``; anything but FormatError).
    """
    rng = random.Random(rng_seed)
    stats = {"executions": 0, "refused": 0, "accepted": 0, "failures": []}
    end = time.monotonic() + seconds if seconds else None
    i = 0
    while (iterations is None or i < iterations) and (end is None or time.monotonic() < end):
        candidate = mutate(seed, rng)
        try:
            load(candidate)
            stats["accepted"] += 1
        except FormatError:
            stats["refused"] += 1
        except Exception as exc:  # noqa: BLE001 -- the point: report anything else
            stats["failures"].append((i, repr(exc)[:300], traceback.format_exc(limit=3)))
        stats["executions"] += 1
        i += 1
    return stats


# -- files that declare huge sizes ------------------------------------------------------------
def huge_safetensors() -> bytes:
    """A 4-KiB safetensors file whose header declares a 2**62-byte tensor."""
    header = {"model.w": {"dtype": "F32", "shape": [2**31, 2**29], "data_offsets": [0, 2**62]},
              "__metadata__": {"format": "aekit-checkpoint", "state": "{}"}}
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 4096


def huge_header_length() -> bytes:
    """A safetensors file whose first 8 bytes declare a 2**60-byte header."""
    return struct.pack("<Q", 2**60) + b"{}" + b"\0" * 64


def huge_model_config(work: Path) -> Path:
    """A model folder whose config.json declares a 10**8-wide hidden layer (40+ GB)."""
    ae, _ = _tiny_autoencoder()
    folder = work / "huge-model"
    ae.save(folder)
    meta = json.loads((folder / "config.json").read_text())
    meta["config"]["model"]["hidden"] = [10**8]
    (folder / "config.json").write_text(json.dumps(meta))
    return folder


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def huge_declarations(work: Path) -> dict[str, str]:
    """Load each huge-declaring file; name -> what happened ("FormatError: ..." or else)."""
    import aekit
    from aekit.training.checkpoint import load_checkpoint

    results = {}
    cases: dict[str, Callable[[], object]] = {}
    for i, (name, data) in enumerate((("safetensors_huge_tensor", huge_safetensors()),
                                      ("safetensors_huge_header", huge_header_length()))):
        path = work / f"checkpoint-{i:010d}.safetensors"
        path.write_bytes(data)
        cases[name] = lambda path=path: load_checkpoint(path)
    folder = huge_model_config(work)
    cases["model_config_huge_layer"] = lambda: aekit.load(folder)
    ae, _ = _tiny_autoencoder()
    other = ae.save(work / "huge-weights")
    (other / "model.safetensors").write_bytes(huge_safetensors())
    cases["model_weights_huge_tensor"] = lambda: aekit.load(other)
    codec = codec_target(work)
    if codec is not None:
        from aekit.apps.codec import MAGIC, VERSION, decode_file

        header = json.dumps({"shape": [2**40, 64], "sample_shape": [5], "data_kind": "tabular",
                             "bits": 16, "code_min": [0.0] * 64, "code_max": [1.0] * 64,
                             "model_sha256": "ab" * 32, "model_dir": None}).encode()
        body = MAGIC + struct.pack("<HI", VERSION, len(header)) + header + \
            struct.pack("<Q", 9) + b"\x28\xb5\x2f\xfd\x00\x58\x00\x00\x00"
        data = body + hashlib.sha256(body).digest()
        cases["codec_huge_shape"] = lambda: decode_file(data)
    for name, call in cases.items():
        try:
            call()
            results[name] = "accepted (!)"
        except FormatError as exc:
            results[name] = f"FormatError: {str(exc)[:100]}"
        except Exception as exc:  # noqa: BLE001
            results[name] = f"FAILURE {type(exc).__name__}: {str(exc)[:100]}"
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="time per target")
    parser.add_argument("--iterations", type=int, default=None, help="inputs per target")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.seconds is None and args.iterations is None:
        args.seconds = 30.0
    torch.set_num_threads(1)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        before = peak_rss_mb()
        for name, outcome in huge_declarations(work).items():
            print(f"huge-size file {name:28s} {outcome}")
            failed += not outcome.startswith("FormatError")
        print(f"peak memory: {before:.0f} MiB before the huge-size files, {peak_rss_mb():.0f} "
              "MiB after")
        for name, make in TARGETS.items():
            made = make(work)
            if made is None:
                print(f"{name:10s} skipped (module not available)")
                continue
            t0 = time.perf_counter()
            stats = fuzz(*made, iterations=args.iterations, seconds=args.seconds,
                         rng_seed=args.seed)
            seconds = time.perf_counter() - t0
            print(f"{name:10s} {stats['executions']:7d} executions in {seconds:5.1f}s "
                  f"({stats['executions'] / seconds:.0f}/s): {stats['refused']} refused "
                  f"(FormatError), {stats['accepted']} loaded, {len(stats['failures'])} failures")
            for i, what, tb in stats["failures"][:5]:
                print(f"   failure at iteration {i}: {what}\n{tb}")
            failed += len(stats["failures"])
        print(f"peak memory at the end: {peak_rss_mb():.0f} MiB")
    print("OK: only FormatError escaped" if not failed else f"FAILED: {failed} failure(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
