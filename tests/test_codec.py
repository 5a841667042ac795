"""The .aez format: round trips, malformed files (FormatError only), and compress/decompress."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
pytest.importorskip("hypothesis")  # the test extra; the property tests need it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st
from sklearn.datasets import load_digits

import aekit
from aekit.apps import codec
from aekit.apps.codec import (MAGIC, decode_file, encode_file, model_fingerprint,
                              quantize)
from aekit.apps.compress import compress, compress_array, decompress, psnr
from aekit.errors import ConfigError, FormatError

FINGERPRINT = "ab" * 32


def _codes(n: int = 50, d: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _blob(bits: int = 8, n: int = 50, d: int = 4) -> bytes:
    return encode_file(quantize(_codes(n, d), bits), (8, 8), "image", FINGERPRINT, None)


def _with_header(header: dict, payload: bytes, fix_checksum: bool = True) -> bytes:
    raw = json.dumps(header).encode()
    body = MAGIC + struct.pack("<HI", 1, len(raw)) + raw + struct.pack("<Q", len(payload)) + payload
    return body + (hashlib.sha256(body).digest() if fix_checksum else b"\0" * 32)


def _header(n: int = 2, d: int = 2, bits: int = 8) -> dict:
    return {"shape": [n, d], "sample_shape": [4], "data_kind": "tabular", "bits": bits,
            "code_min": [0.0] * d, "code_max": [1.0] * d, "model_sha256": FINGERPRINT,
            "model_dir": None}


@pytest.mark.parametrize("bits", [2, 5, 8, 9, 12, 16])
def test_round_trip_matches_naive_quantizer(bits):
    codes = _codes()
    quantized, header = decode_file(encode_file(quantize(codes, bits), (8, 8), "image",
                                                FINGERPRINT, "/x"))
    # naive reference: per-dimension min/max, 2**bits - 1 steps, round to nearest
    lo, hi = codes.min(0), codes.max(0)
    levels = 2**bits - 1
    expected_q = np.array([[round(float((v - lo[j]) / (hi[j] - lo[j]) * levels))
                            for j, v in enumerate(row)] for row in codes])
    np.testing.assert_array_equal(quantized.q, expected_q)
    step = (hi - lo) / levels
    assert np.all(np.abs(quantized.dequantize() - codes) <= step / 2 + 1e-6)
    assert header["shape"] == [50, 4] and header["bits"] == bits and header["model_dir"] == "/x"


def test_constant_dimension_and_empty_codes():
    codes = np.ones((10, 3), np.float32)
    q, _ = decode_file(encode_file(quantize(codes, 4), (3,), "tabular", FINGERPRINT))
    np.testing.assert_array_equal(q.dequantize(), codes)
    q, _ = decode_file(encode_file(quantize(np.zeros((0, 3), np.float32), 4), (3,), "tabular",
                                   FINGERPRINT))
    assert q.q.shape == (0, 3)


@pytest.mark.parametrize("bits", [1, 17, 8.0, True])
def test_bits_out_of_range(bits):
    with pytest.raises(ConfigError, match="`bits` must be an integer from 2 to 16"):
        quantize(_codes(), bits)


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:5], "magic"),
    (lambda b: b"PK\x03\x04" + b[4:], "magic"),
    (lambda b: b[:8] + struct.pack("<H", 9) + b[10:], "version 9"),
    (lambda b: b[:10] + struct.pack("<I", 2**31) + b[14:], "over the limit"),
    (lambda b: b[:10] + struct.pack("<I", 60000) + b[14:], "truncated"),
    (lambda b: b[:-1], "lengths say|truncated"),
    (lambda b: b + b"\0", "lengths say"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum"),
    (lambda b: b[:-40] + bytes([b[-40] ^ 4]) + b[-39:], "checksum"),
])
def test_malformed_files_raise_format_error(mutate, message):
    with pytest.raises(FormatError, match=message):
        decode_file(mutate(_blob()))


@pytest.mark.parametrize("change, message", [
    ({"shape": [2]}, "shape"),
    ({"shape": [2, 0]}, "shape"),
    ({"bits": 40}, "bits"),
    ({"code_min": [0.0, float("nan")]}, "code_min"),
    ({"code_min": [2.0, 0.0]}, "exceeds"),
    ({"model_sha256": "xyz"}, "model_sha256"),
    ({"data_kind": "audio"}, "data_kind"),
])
def test_bad_header_fields(change, message):
    blob = _with_header({**_header(), **change}, b"")
    with pytest.raises(FormatError, match=message):
        decode_file(blob)


def test_huge_declared_size_is_refused_before_allocating(monkeypatch):
    # 10**9 x 60000 codes with a valid checksum: refused by the size limit, nothing allocated.
    calls = []
    monkeypatch.setattr(codec.np, "frombuffer", lambda *a, **k: calls.append(a))
    header = {**_header(d=60000), "shape": [10**9, 60000],
              "code_min": [0.0] * 60000, "code_max": [1.0] * 60000}
    header_small = {**_header(n=10**12, d=2)}
    for h in (header, header_small):
        blob = _with_header(h, b"\x28\xb5\x2f\xfd" + b"\0" * 8)
        with pytest.raises(FormatError, match="over the limit|header length"):
            decode_file(blob)
    assert not calls


def test_payload_lying_about_its_size():
    import zstandard

    payload = zstandard.ZstdCompressor().compress(b"\0" * 100)  # header says 2 x 2 = 4 bytes
    with pytest.raises(FormatError, match="declares 100 bytes"):
        decode_file(_with_header(_header(), payload))
    payload = zstandard.ZstdCompressor(write_content_size=False).compress(b"\0" * 100)
    with pytest.raises(FormatError, match="decodes to 5\\+ bytes"):
        decode_file(_with_header(_header(), payload))
    with pytest.raises(FormatError, match="zstd"):
        decode_file(_with_header(_header(), b"garbage!"))
    payload = zstandard.ZstdCompressor().compress(bytes([0, 1, 2, 200]))
    with pytest.raises(FormatError, match="values >= 2\\*\\*4"):
        decode_file(_with_header(_header(bits=4), payload))


def _check_only_format_error(data: bytes) -> None:
    try:
        decode_file(data, max_decoded_bytes=1 << 20)
    except FormatError:
        pass


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_truncated_and_bit_flipped(data):
    blob = bytearray(_blob(bits=data.draw(st.sampled_from([3, 8, 12]))))
    kind = data.draw(st.sampled_from(["truncate", "flip", "flip_fixed_checksum", "splice"]))
    if kind == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "splice":
        at = data.draw(st.integers(0, len(blob)))
        blob[at:at] = data.draw(st.binary(max_size=64))
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        if kind == "flip_fixed_checksum":  # reach the parser behind the checksum
            blob[-32:] = hashlib.sha256(bytes(blob[:-32])).digest()
    _check_only_format_error(bytes(blob))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=512), st.booleans())
def test_fuzz_random_files(data, with_magic):
    _check_only_format_error((MAGIC + data) if with_magic else data)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(sorted(_header())), st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4), max_leaves=8)), st.binary(max_size=32))
def test_fuzz_headers_with_valid_checksum(changes, payload):
    _check_only_format_error(_with_header({**_header(), **changes}, payload))


@pytest.fixture(scope="module")
def digits_model():
    x = load_digits().data.astype(np.float32)
    ae = aekit.Autoencoder(latent_dim=8, hidden=(32,), epochs=3, progress=False, seed=0,
                           threads=1)
    ae.fit(x)
    return ae, x


def test_compress_decompress_files(tmp_path, digits_model):
    ae, x = digits_model
    ae.save(tmp_path / "model")
    report = compress(tmp_path / "model", x[:200], tmp_path / "d.aez", bits=12)
    assert report.file_bytes == (tmp_path / "d.aez").stat().st_size
    assert report.raw_bytes == 200 * 64 * 4 and report.bits_per_pixel is None
    assert report.ratio == pytest.approx(report.raw_bytes / report.file_bytes)
    assert report.mse == pytest.approx(report.mse_unquantized, rel=0.01)
    back = decompress(tmp_path / "d.aez")  # model found from the file's hint
    np.testing.assert_allclose(back, ae.reconstruct(x[:200]), atol=0.05 * np.ptp(x))
    other = aekit.Autoencoder(latent_dim=8, hidden=(32,), epochs=1, progress=False, seed=1)
    other.fit(x[:100])
    with pytest.raises(FormatError, match="not by this model"):
        decompress(tmp_path / "d.aez", other)


def test_report_numbers_match_a_naive_computation(digits_model):
    ae, x = digits_model
    blob, report = compress_array(ae, x[:100], bits=4)
    q, _ = decode_file(blob)
    x_scaled = ae.scaler.transform(x[:100])
    naive = np.mean((ae.scaler.transform(ae.decode(q.dequantize())) - x_scaled) ** 2)
    assert report.mse == pytest.approx(float(naive), rel=1e-5)
    assert report.psnr_db == pytest.approx(psnr(report.mse, float(x_scaled.max() - x_scaled.min())))
    assert report.bits_per_sample == pytest.approx(8 * len(blob) / 100)
    assert report.mse > report.mse_unquantized  # 4 bits loses something


def test_fingerprint_changes_with_weights(digits_model):
    ae, _ = digits_model
    state = {k: v.clone() for k, v in ae.model.state_dict().items()}
    before = model_fingerprint(state)
    next(iter(state.values())).view(-1)[0] += 1
    assert model_fingerprint(state) != before and len(before) == 64
