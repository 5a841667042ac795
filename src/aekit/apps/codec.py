"""The ``.aez`` compressed-codes format: quantized autoencoder codes, entropy-coded with zstd.

Byte by byte (all integers little-endian)::

    offset      size  field
    0           8     magic: b"\\x89AEKZ\\r\\n\\x1a" (non-ASCII first byte and CR LF catch
                      text-mode transfers, like PNG's signature)
    8           2     format version, uint16 (this module writes and reads 1)
    10          4     header length H, uint32; 2 <= H <= MAX_HEADER_BYTES (65536)
    14          H     header: a UTF-8 JSON object (fields below)
    14+H        8     payload length P, uint64; P <= bytes left and P <= MAX_PAYLOAD_BYTES
    22+H        P     payload: one zstd frame holding the quantized codes
    22+H+P      32    SHA-256 of bytes [0, 22+H+P) (everything before it)

The file ends exactly there: trailing bytes are an error.

Header fields (all required):

- ``shape``: ``[n_samples, latent_dim]`` of the codes.
- ``sample_shape``: shape of one decoded sample (``[28, 28]``), for reshaping and reports.
- ``data_kind``: ``"image"`` or ``"tabular"``.
- ``bits``: bits per quantized value, 2..16.
- ``code_min``, ``code_max``: per-dimension lists of ``latent_dim`` finite floats,
  ``code_min[j] <= code_max[j]``.
- ``model_sha256``: the fingerprint of the model that made the codes
  (:func:`model_fingerprint`); decoding with another model is refused.
- ``model_dir``: where the model was when the file was written (a hint used when no model is
  given to ``aekit decompress``); may be ``null``.

Quantization: code value ``z`` in dimension ``j`` becomes the integer
``q = round((z - code_min[j]) / (code_max[j] - code_min[j]) * (2**bits - 1))`` (0 where the
range is 0), and is decoded as ``code_min[j] + q / (2**bits - 1) * (code_max[j] - code_min[j])``.
The integers are stored as uint8 when ``bits <= 8`` and as uint16 little-endian otherwise, in
dimension-major order (all samples' values of dimension 0, then dimension 1, ...) because a
dimension's values resemble each other more than one sample's do, which helps the coder. The
decompressed payload must be exactly ``n_samples * latent_dim * itemsize`` bytes, every value
must be ``< 2**bits``, and that size must be at most ``MAX_DECODED_BYTES`` (1 GiB): all checked
before anything of that size is allocated.

Every malformation (wrong magic, version, a length beyond the bytes present or a limit, bad JSON,
a missing or out-of-range field, a checksum mismatch, a zstd error) raises
:class:`aekit.errors.FormatError` and nothing else.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import zstandard

from aekit.errors import ConfigError, FormatError

MAGIC = b"\x89AEKZ\r\n\x1a"
VERSION = 1
MAX_HEADER_BYTES = 65536
MAX_PAYLOAD_BYTES = 1 << 30
MAX_DECODED_BYTES = 1 << 30
MAX_LATENT_DIM = 65536
CHECKSUM_BYTES = 32
ZSTD_LEVEL = 19
_FIXED = len(MAGIC) + 2 + 4  # bytes before the header


@dataclass(frozen=True)
class Quantized:
    """Codes quantized to ``bits`` per value with per-dimension ranges.

    Attributes:
        q: (n_samples, latent_dim) uint8 or uint16 integers.
        code_min, code_max: (latent_dim,) float64 ranges.
        bits: bits per value, 2..16.
    """

    q: np.ndarray
    code_min: np.ndarray
    code_max: np.ndarray
    bits: int

    def dequantize(self) -> np.ndarray:
        """The codes the integers stand for: (n_samples, latent_dim) float32."""
        levels = (1 << self.bits) - 1
        span = self.code_max - self.code_min
        return (self.code_min + self.q.astype(np.float64) / levels * span).astype(np.float32)


def valid_bits(bits: Any) -> bool:
    """True for a bits-per-value setting the format allows: an integer from 2 to 16."""
    return not isinstance(bits, bool) and isinstance(bits, (int, np.integer)) and \
        2 <= bits <= 16


def check_bits(bits: Any) -> int:
    """Validate a user's bits-per-value setting.

    Raises:
        ConfigError: not an integer from 2 to 16.
    """
    if not valid_bits(bits):
        raise ConfigError(f"`bits` must be an integer from 2 to 16. Received: bits={bits!r}")
    return int(bits)


def quantize(codes: np.ndarray, bits: int) -> Quantized:
    """Quantize codes uniformly per dimension between that dimension's min and max.

    Args:
        codes: (n_samples, latent_dim) finite floats.
        bits: bits per value, 2..16.
    """
    bits = check_bits(bits)
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or not np.isfinite(codes).all():
        raise ConfigError(f"codes must be a 2-D array of finite values. Received: shape "
                          f"{codes.shape}, finite: {bool(np.isfinite(codes).all())}")
    lo = codes.min(axis=0) if len(codes) else np.zeros(codes.shape[1])
    hi = codes.max(axis=0) if len(codes) else np.zeros(codes.shape[1])
    levels = (1 << bits) - 1
    span = np.where(hi > lo, hi - lo, 1.0)
    q = np.rint((codes - lo) / span * levels).clip(0, levels)
    dtype = np.uint8 if bits <= 8 else np.uint16
    return Quantized(q.astype(dtype), lo, hi, bits)


def model_fingerprint(state: dict[str, Any]) -> str:
    """SHA-256 over a model's state: names, dtypes, shapes and raw bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def encode_file(quantized: Quantized, sample_shape: tuple[int, ...], data_kind: str,
                model_sha256: str, model_dir: str | None = None) -> bytes:
    """Serialise quantized codes as the bytes of an ``.aez`` file."""
    n, d = quantized.q.shape
    header = {"shape": [int(n), int(d)], "sample_shape": [int(v) for v in sample_shape],
              "data_kind": data_kind, "bits": quantized.bits,
              "code_min": [float(v) for v in quantized.code_min],
              "code_max": [float(v) for v in quantized.code_max],
              "model_sha256": model_sha256, "model_dir": model_dir}
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    if len(header_bytes) > MAX_HEADER_BYTES:
        raise FormatError(f"the header would be {len(header_bytes)} bytes, over the "
                          f"{MAX_HEADER_BYTES}-byte limit (latent_dim={d} too large)")
    raw = np.ascontiguousarray(quantized.q.T).astype(quantized.q.dtype.newbyteorder("<"))
    payload = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(raw.tobytes())
    body = b"".join([MAGIC, struct.pack("<HI", VERSION, len(header_bytes)), header_bytes,
                     struct.pack("<Q", len(payload)), payload])
    return body + hashlib.sha256(body).digest()


def decode_file(data: bytes, max_decoded_bytes: int = MAX_DECODED_BYTES
                ) -> tuple[Quantized, dict[str, Any]]:
    """Parse and check the bytes of an ``.aez`` file.

    Args:
        data: the whole file.
        max_decoded_bytes: hard limit on the size of the decoded integers.

    Returns:
        The quantized codes and the header.

    Raises:
        FormatError: anything malformed (see the module docstring), and only that.
    """
    data = bytes(data)
    if len(data) < _FIXED or data[:len(MAGIC)] != MAGIC:
        raise FormatError("not an aekit compressed file: the magic bytes are missing "
                          f"(got {data[:len(MAGIC)]!r}, expected {MAGIC!r})")
    version, header_len = struct.unpack_from("<HI", data, len(MAGIC))
    if version != VERSION:
        raise FormatError(f"unsupported format version {version} (this aekit reads {VERSION})")
    _check_length("header length", header_len, len(data) - _FIXED, MAX_HEADER_BYTES)
    header = _parse_header(data[_FIXED:_FIXED + header_len])
    at = _FIXED + header_len
    if len(data) - at < 8:
        raise FormatError(f"truncated file: no payload length after the header ({len(data)} "
                          "bytes in all)")
    (payload_len,) = struct.unpack_from("<Q", data, at)
    at += 8
    _check_length("payload length", payload_len, len(data) - at - CHECKSUM_BYTES,
                  MAX_PAYLOAD_BYTES)
    end = at + payload_len
    if len(data) != end + CHECKSUM_BYTES:
        raise FormatError(f"file is {len(data)} bytes, its lengths say {end + CHECKSUM_BYTES}")
    if hashlib.sha256(data[:end]).digest() != data[end:]:
        raise FormatError("checksum mismatch: the file is corrupted")
    q = _decode_payload(data[at:end], header, max_decoded_bytes)
    return Quantized(q, np.asarray(header["code_min"], np.float64),
                     np.asarray(header["code_max"], np.float64), header["bits"]), header


def _check_length(what: str, value: int, available: int, limit: int) -> None:
    if value > limit:
        raise FormatError(f"{what} {value} is over the limit of {limit} bytes")
    if value > available:
        raise FormatError(f"truncated file: {what} {value} but only {max(0, available)} "
                          "bytes are present")


def _parse_header(raw: bytes) -> dict[str, Any]:
    """Decode and validate the JSON header (see the module docstring for the fields)."""
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"the header is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FormatError(f"the header must be a JSON object, not {type(header).__name__}")
    missing = [k for k in ("shape", "sample_shape", "data_kind", "bits", "code_min",
                           "code_max", "model_sha256", "model_dir") if k not in header]
    if missing:
        raise FormatError(f"the header lacks the field(s) {', '.join(missing)}")
    shape = header["shape"]
    if not _int_list(shape, 2) or shape[1] < 1 or shape[1] > MAX_LATENT_DIM:
        raise FormatError(f"header field shape must be [n_samples, latent_dim] with "
                          f"1 <= latent_dim <= {MAX_LATENT_DIM}. Received: {_short(shape)}")
    sample_shape = header["sample_shape"]
    if not _int_list(sample_shape) or not 1 <= len(sample_shape) <= 4 or \
            min(sample_shape) < 1 or math.prod(sample_shape) > 1 << 30:
        raise FormatError(f"header field sample_shape must be 1 to 4 positive integers. "
                          f"Received: {_short(sample_shape)}")
    if header["data_kind"] not in ("image", "tabular"):
        raise FormatError(f"header field data_kind must be image or tabular. "
                          f"Received: {_short(header['data_kind'])}")
    if not valid_bits(header["bits"]):
        raise FormatError(f"header field bits must be an integer from 2 to 16. "
                          f"Received: {_short(header['bits'])}")
    _check_ranges(header["code_min"], header["code_max"], shape[1])
    fingerprint = header["model_sha256"]
    if not isinstance(fingerprint, str) or len(fingerprint) != 64 or \
            any(c not in "0123456789abcdef" for c in fingerprint):
        raise FormatError(f"header field model_sha256 must be 64 hex digits. "
                          f"Received: {_short(fingerprint)}")
    if header["model_dir"] is not None and not isinstance(header["model_dir"], str):
        raise FormatError("header field model_dir must be a string or null")
    return header


def _int_list(value: Any, length: int | None = None) -> bool:
    return isinstance(value, list) and (length is None or len(value) == length) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _check_ranges(lo: Any, hi: Any, latent_dim: int) -> None:
    for name, values in (("code_min", lo), ("code_max", hi)):
        if not isinstance(values, list) or len(values) != latent_dim or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in values):
            raise FormatError(f"header field {name} must be {latent_dim} finite numbers. "
                              f"Received: {_short(values)}")
    if any(a > b for a, b in zip(lo, hi)):
        raise FormatError("header field code_min exceeds code_max in some dimension")


def _decode_payload(payload: bytes, header: dict[str, Any], max_decoded_bytes: int
                    ) -> np.ndarray:
    """Decompress at most the expected number of bytes and rebuild the integer matrix."""
    n, d = header["shape"]
    bits = header["bits"]
    itemsize = 1 if bits <= 8 else 2
    expected = n * d * itemsize
    if expected > max_decoded_bytes:
        raise FormatError(f"the header declares {n} x {d} codes ({expected} bytes decoded), "
                          f"over the limit of {max_decoded_bytes} bytes")
    try:
        declared = zstandard.frame_content_size(payload)
        if declared not in (-1, expected):  # -1: size not recorded in the frame
            raise FormatError(f"the payload declares {declared} bytes decoded, the header "
                              f"{expected}")
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(payload))
        raw = reader.read(expected + 1) if expected else b""
    except zstandard.ZstdError as exc:
        raise FormatError(f"the payload is not a valid zstd frame ({exc})") from None
    if len(raw) != expected:
        raise FormatError(f"the payload decodes to {len(raw)}{'+' if len(raw) > expected else ''}"
                          f" bytes, the header declares {expected}")
    q = np.frombuffer(raw, dtype="<u2" if itemsize == 2 else np.uint8).reshape(d, n).T
    if q.size and int(q.max()) >= 1 << bits:
        raise FormatError(f"the payload holds values >= 2**{bits}")
    return np.ascontiguousarray(q).astype(np.uint16 if itemsize == 2 else np.uint8)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
