"""Bounded fuzz of the checkpoint loader, the model loader (``aekit.load``) and the ``.aez``
decoder: mutated files raise FormatError and nothing else; files declaring huge sizes are
refused without allocating them. ``benchmarks/fuzz.py`` is the longer run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("aekit_fuzz", ROOT / "benchmarks" / "fuzz.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)


@pytest.mark.parametrize("target", sorted(fuzz.TARGETS))
def test_mutated_files_raise_only_format_error(target, tmp_path):
    made = fuzz.TARGETS[target](tmp_path)
    if made is None:
        pytest.skip(f"{target}: module not available")
    seed, load = made
    load(seed)  # the unmutated file loads
    stats = fuzz.fuzz(seed, load, iterations=150, rng_seed=1)
    assert stats["executions"] == 150
    assert stats["failures"] == [], stats["failures"][:3]
    assert stats["refused"] > 100  # the mutations do break the files


def test_huge_declared_sizes_are_refused_with_bounded_memory(tmp_path):
    fuzz._tiny_autoencoder()  # what making the seed files costs is not the point here
    fuzz.codec_target(tmp_path)
    before = fuzz.peak_rss_mb()
    results = fuzz.huge_declarations(tmp_path)
    assert len(results) >= 4
    for name, outcome in results.items():
        assert outcome.startswith("FormatError"), (name, outcome)
    assert fuzz.peak_rss_mb() - before < 64  # MiB; the files declare gigabytes to exabytes
