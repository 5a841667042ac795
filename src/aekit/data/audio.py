"""Sound as log-spectrograms: ``--data audio:DIR[?options]``.

Every ``*.wav`` file under DIR (sorted) is one sample: mixed to mono, scaled to [-1, 1] (integer
PCM by its type's range), cut into frames by ``scipy.signal.stft`` (Hann window of ``nperseg``
samples, half overlap), turned into ``log(|STFT| + 1e-6)``, and cropped or padded with the
silence value to exactly ``frames`` frames. A sample is an image of shape
(frequency bins = nperseg // 2 + 1, frames), so ``--kind conv`` works on it; it is scaled to
[0, 1] per feature (min-max) by default. When the files sit in two or more subfolders, the
subfolder is the label.

Options after ``?``, joined by ``&``: ``frames=N`` (default 32), ``nperseg=N`` (default 256).
All files must share one sample rate.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from aekit.data.dataset import Dataset
from aekit.data.text import folder_labels, int_option, split_spec
from aekit.data.validate import validate_array
from aekit.errors import DataError, DataNotFoundError

AUDIO_OPTIONS = ("frames", "nperseg")
DEFAULT_FRAMES = 32
DEFAULT_NPERSEG = 256
LOG_FLOOR = 1e-6


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    """(sample rate, mono float64 signal in [-1, 1]) of a WAV file.

    Raises:
        DataError: unreadable or empty file.
    """
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, data = wavfile.read(path)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read as WAV ({exc})") from exc
    signal = np.asarray(data, dtype=np.float64)
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        signal = (signal - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    if signal.ndim == 2:
        signal = signal.mean(axis=1)
    if signal.size == 0:
        raise DataError(f"{path}: the WAV file holds no samples")
    return int(rate), signal


def log_spectrogram(signal: np.ndarray, rate: int, nperseg: int, frames: int) -> np.ndarray:
    """(nperseg // 2 + 1, frames) float32 ``log(|STFT| + 1e-6)``, cropped or padded in time."""
    from scipy.signal import stft

    nperseg_used = min(nperseg, max(8, signal.size))
    _, _, z = stft(signal, fs=rate, nperseg=nperseg_used, noverlap=nperseg_used // 2,
                   nfft=nperseg, boundary="zeros", padded=True)
    spec = np.log(np.abs(z) + LOG_FLOOR)  # (bins, time)
    out = np.full((nperseg // 2 + 1, frames), np.log(LOG_FLOOR))
    n = min(frames, spec.shape[1])
    out[:, :n] = spec[:, :n]
    return out.astype(np.float32)


def load_audio(spec: str) -> Dataset:
    """Load an ``audio:`` spec (see the module docstring) as an image-like dataset.

    Raises:
        DataNotFoundError: the folder does not exist.
        DataError: no WAV files, unreadable files, mixed sample rates, bad options.
    """
    body, options = split_spec(spec, "audio", AUDIO_OPTIONS)
    frames = int_option(spec, options, "frames", DEFAULT_FRAMES)
    nperseg = int_option(spec, options, "nperseg", DEFAULT_NPERSEG, low=8)
    folder = Path(body).expanduser()
    if not folder.is_dir():
        raise DataNotFoundError(f"--data {spec!r}: no such folder {folder} (expected "
                                "audio:DIR holding .wav files)")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".wav" and p.is_file())
    if not files:
        raise DataError(f"--data {spec!r}: no .wav files in {folder}")
    specs, first_rate = [], None
    for path in files:
        rate, signal = read_wav(path)
        if first_rate is None:
            first_rate = rate
        elif rate != first_rate:
            raise DataError(f"{path}: sample rate {rate} Hz differs from {files[0]}'s "
                            f"{first_rate} Hz; resample the files to one rate")
        specs.append(log_spectrogram(signal, rate, nperseg, frames))
    stack = np.stack(specs)  # (n, bins, frames)
    x = validate_array(stack.reshape(len(stack), -1), spec)
    return Dataset(x, stack.shape[1:], "image", spec, folder_labels(files, folder))
