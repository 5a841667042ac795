"""Text (``text:``) and audio (``audio:``) data specs, on files the tests write."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import stft

from aekit.cli import main
from aekit.data import load
from aekit.errors import DataError, DataNotFoundError

TOPICS = {"sport": "goal match team player score win league ball coach",
          "food": "bread cheese soup recipe oven salt butter dinner taste"}


def write_texts(folder: Path, per_topic: int = 12) -> Path:
    """Short documents in two subfolders (the labels), words drawn from each topic's list."""
    rng = np.random.default_rng(0)
    for topic, words in TOPICS.items():
        (folder / topic).mkdir(parents=True, exist_ok=True)
        vocab = words.split()
        for i in range(per_topic):
            doc = " ".join(rng.choice(vocab, size=12))
            (folder / topic / f"{i:02d}.txt").write_text(doc, encoding="utf-8")
    return folder


def write_wavs(folder: Path, rate: int = 8000) -> Path:
    """Two-tenths-of-a-second tones: low ones and high ones, int16 and float32, some stereo."""
    t = np.arange(int(0.2 * rate)) / rate
    for label, base in (("low", 300.0), ("high", 2000.0)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(4):
            tone = 0.5 * np.sin(2 * np.pi * (base + 50 * i) * t)
            if i % 2:
                wavfile.write(folder / label / f"{i}.wav", rate, (tone * 32767).astype(np.int16))
            else:
                stereo = np.stack([tone, tone], axis=1).astype(np.float32)
                wavfile.write(folder / label / f"{i}.wav", rate, stereo)
    return folder


def test_text_folder_tfidf_matches_sklearn(tmp_path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    folder = write_texts(tmp_path / "docs")
    ds = load(f"text:{folder}?max_features=15")
    files = sorted(folder.rglob("*.txt"))
    ref = TfidfVectorizer(max_features=15).fit_transform([f.read_text() for f in files])
    np.testing.assert_allclose(ds.x, ref.toarray(), atol=1e-6)
    assert ds.kind == "tabular" and ds.sample_shape == (15,)
    assert ds.labels.tolist() == [0] * 12 + [1] * 12  # food, then sport (sorted)


def test_text_csv_column_hashing(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review", "label"])
        writer.writerows([[1, "great soup, great bread", 1], [2, "the team lost the match", 0],
                          [3, "", 0]])
    ds = load(f"text:{path}:review?vectorizer=hashing&max_features=64")
    assert ds.x.shape == (3, 64) and ds.labels.tolist() == [1, 0, 0]
    np.testing.assert_allclose(np.linalg.norm(ds.x[:2], axis=1), 1.0, rtol=1e-5)
    assert not ds.x[2].any()  # an empty text is the zero vector
    # hashing is stateless: the same text maps to the same vector in another load
    again = load(f"text:{path}:review?vectorizer=hashing&max_features=64")
    np.testing.assert_array_equal(ds.x, again.x)
    by_position = load(f"text:{path}:1?vectorizer=hashing&max_features=64")  # 0-based
    np.testing.assert_array_equal(by_position.x, ds.x)
    assert by_position.labels.tolist() == [1, 0, 0]


def test_text_errors_echo_the_input(tmp_path: Path) -> None:
    folder = write_texts(tmp_path / "docs", per_topic=2)
    with pytest.raises(DataError, match="`vectorizer` must be one of tfidf, hashing. "
                                        "Received: vectorizer='bow'"):
        load(f"text:{folder}?vectorizer=bow")
    with pytest.raises(DataError, match="`max_features` must be an integer >= 1. "
                                        "Received: max_features='0'"):
        load(f"text:{folder}?max_features=0")
    with pytest.raises(DataError, match="unknown option"):
        load(f"text:{folder}?frames=3")
    with pytest.raises(DataNotFoundError, match="no such file or folder"):
        load(f"text:{tmp_path / 'missing'}")
    (tmp_path / "t.csv").write_text("a,b\nx,y\n")
    with pytest.raises(DataError, match="has no column 'review'; its columns: a, b"):
        load(f"text:{tmp_path / 't.csv'}:review")
    (tmp_path / "header.csv").write_text("a,review\n")
    with pytest.raises(DataError, match="has no data rows after the header"):
        load(f"text:{tmp_path / 'header.csv'}:review")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .txt files"):
        load(f"text:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="a CSV file needs the text column"):
        load(f"text:{tmp_path / 't.csv'}")


def test_audio_folder_log_spectrograms(tmp_path: Path) -> None:
    folder = write_wavs(tmp_path / "wav")
    ds = load(f"audio:{folder}?frames=10&nperseg=64")
    assert ds.kind == "image" and ds.sample_shape == (33, 10) and ds.x.shape == (8, 330)
    assert ds.labels.tolist() == [0] * 4 + [1] * 4  # high < low
    # naive reference for one int16 file: scale, STFT, log, crop
    rate, data = wavfile.read(folder / "high" / "1.wav")
    _, _, z = stft(data / 32768.0, fs=rate, nperseg=64, noverlap=32)
    np.testing.assert_allclose(ds.x[1].reshape(33, 10), np.log(np.abs(z) + 1e-6)[:, :10],
                               rtol=1e-5, atol=1e-4)
    # the loudest bin of a low tone sits below that of a high tone
    low, high = ds.x[4].reshape(33, 10), ds.x[0].reshape(33, 10)
    assert low[:, 3].argmax() < high[:, 3].argmax()


def test_audio_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no such folder"):
        load(f"audio:{tmp_path / 'none'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no .wav files"):
        load(f"audio:{tmp_path / 'empty'}")
    folder = write_wavs(tmp_path / "wav")
    wavfile.write(folder / "low" / "z.wav", 16000, np.zeros(100, np.int16))
    with pytest.raises(DataError, match="sample rate 16000 Hz differs"):
        load(f"audio:{folder}")
    with pytest.raises(DataError, match="`nperseg` must be an integer >= 8"):
        load(f"audio:{folder}?nperseg=4")


def test_train_on_text_and_audio_from_the_cli(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    docs, wavs = write_texts(tmp_path / "docs"), write_wavs(tmp_path / "wav")
    common = ["--epochs", "2", "--threads", "1", "--no-progress", "--latent-dim", "2",
              "--hidden", "16"]
    assert main(["train", "--data", f"text:{docs}?max_features=18", "--out",
                 str(tmp_path / "t"), *common]) == 0
    assert main(["train", "--data", f"audio:{wavs}?frames=8&nperseg=32", "--kind", "conv",
                 "--conv-channels", "4,8", "--out", str(tmp_path / "a"), "--test-split", "0.25",
                 *common]) == 0
    out = capsys.readouterr().out
    assert "18 features" in out and "(2 samples, 136 features)" in out
