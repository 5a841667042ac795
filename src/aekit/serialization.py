"""Safe files: tensors in safetensors, metadata in JSON, written atomically, never pickle.

Every reader checks sizes before reading and turns any malformation into
:class:`aekit.errors.FormatError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from aekit.errors import FormatError

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_TENSOR_FILE_BYTES = 8 * 1024**3


def is_number(value: Any) -> bool:
    """True for a number as ``json.loads`` returns one (int or float; not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    """True for an integer as ``json.loads`` returns one (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def weights_hash(model_dir: str | Path | None) -> str | None:
    """SHA-256 of ``model_dir/model.safetensors`` (None without one): ``explain.json`` records
    it so that a report can tell an explanation of older weights."""
    if model_dir is None:
        return None
    path = Path(model_dir) / "model.safetensors"
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, flushed and renamed into place.

    A crash at any moment leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, value: Any) -> None:
    """Atomically write ``value`` as indented JSON."""
    atomic_write_bytes(path, (json.dumps(value, indent=2, allow_nan=True) + "\n").encode())


def read_json(path: str | Path, what: str = "metadata") -> dict[str, Any]:
    """Read a JSON object, refusing oversized or malformed files with :class:`FormatError`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise FormatError(f"{path}: {what} file is {size} bytes, over the "
                              f"{MAX_JSON_BYTES}-byte limit")
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise FormatError(f"{path}: {what} file is missing") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: {what} file is not valid JSON ({exc})") from exc
    if not isinstance(value, dict):
        raise FormatError(f"{path}: {what} file must hold a JSON object, "
                          f"not {type(value).__name__}")
    return value


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> None:
    """Atomically write named tensors as safetensors (copies: views of one buffer are fine)."""
    from safetensors.torch import save

    owned = {k: v.detach().to("cpu").clone().contiguous() for k, v in tensors.items()}
    atomic_write_bytes(path, save(owned, metadata=metadata))


def load_tensors(path: str | Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """Read a safetensors file; anything malformed raises :class:`FormatError`."""
    from safetensors.torch import load

    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_TENSOR_FILE_BYTES:
            raise FormatError(f"{path}: {what} file is {size} bytes, over the limit")
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"{path}: {what} file is missing") from None
    except OSError as exc:
        raise FormatError(f"{path}: {what} file cannot be read ({exc})") from exc
    if len(data) < 8:
        raise FormatError(f"{path}: {what} file is truncated ({len(data)} bytes)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8 or header_len > MAX_JSON_BYTES:
        raise FormatError(f"{path}: {what} file declares a {header_len}-byte header but holds "
                          f"{len(data)} bytes")
    try:
        return load(data)
    except Exception as exc:  # safetensors raises its own error types on malformed input
        raise FormatError(f"{path}: {what} file is not a valid safetensors file ({exc})") from exc


def load_state_into(module: torch.nn.Module, tensors: dict[str, torch.Tensor],
                    source: str | Path) -> None:
    """Copy ``tensors`` into ``module``'s state, requiring exactly the same names and shapes."""
    state = module.state_dict()
    missing = sorted(set(state) - set(tensors))
    extra = sorted(set(tensors) - set(state))
    if missing or extra:
        raise FormatError(f"{source}: weights do not match the model: missing {missing[:5]}, "
                          f"unexpected {extra[:5]}")
    with torch.no_grad():
        for name, target in state.items():
            value = tensors[name]
            if value.shape != target.shape or value.dtype != target.dtype:
                raise FormatError(f"{source}: tensor {name} has shape {tuple(value.shape)} "
                                  f"{value.dtype}, the model needs {tuple(target.shape)} "
                                  f"{target.dtype}")
            target.copy_(value)
