"""A folder of image files (png, jpg, bmp, gif, tif) read with Pillow into one image stack."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from aekit.data.dataset import Dataset, dataset_from_array
from aekit.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
GREY_8BIT_MODES = ("1", "L", "LA")
GREY_DEEP_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def class_folders(folder: Path) -> list[Path]:
    """The subfolders of ``folder`` that hold images, sorted by name, when ``folder`` itself
    holds none (one subfolder per class, as torchvision's ``ImageFolder``); else empty."""
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    if any(_is_image(p) for p in entries):
        return []
    return [p for p in entries if p.is_dir() and any(_is_image(f) for f in p.iterdir())]


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (or, with one subfolder per class, inside its
    class subfolders), sorted by subfolder and name.

    Args:
        folder: the folder.

    Returns:
        Paths whose extension is one of IMAGE_EXTENSIONS (case-insensitive).

    Raises:
        DataError: the folder holds no image files.
    """
    entries = sorted(folder.iterdir(), key=lambda p: p.name)
    files = [p for p in entries if _is_image(p)]
    for sub in class_folders(folder):
        files += sorted((p for p in sub.iterdir() if _is_image(p)), key=lambda p: p.name)
    if not files:
        found = f"{len(entries)} other entries" if entries else "it is empty"
        raise DataError(
            f"{folder}: no image files in this folder ({found}); "
            f"allowed extensions: {', '.join(IMAGE_EXTENSIONS)}"
        )
    return files


def load_image_folder(folder: Path, source: str | None = None) -> Dataset:
    """Load every image in a folder as one sample.

    Greyscale images give sample_shape (h, w); if any image is colour, all are converted to RGB
    and sample_shape is (3, h, w). 8-bit images have pixel_max 255.

    Args:
        folder: the folder.
        source: name for messages; defaults to the folder path.

    Returns:
        The image dataset; with one subfolder per class, labelled by subfolder (codes in the
        subfolders' sorted order, their names in ``label_names``).

    Raises:
        DataError: no images, an unreadable image, sizes that differ, or mixed colour and
            high-bit-depth greyscale images.
    """
    source = source or str(folder)
    files = image_files(folder)
    modes, size = _scan_headers(files)
    target = _target_mode(modes, folder)
    stack = _read_stack(files, size, target)
    pixel_max: float | None = 255.0 if stack.dtype == np.uint8 else None
    if target == "deep" and all(m.startswith("I;16") for m in modes):
        pixel_max = 65535.0
    classes = [p.parent.name for p in files] if class_folders(folder) else None
    names = tuple(sorted(set(classes))) if classes else None
    labels = (np.asarray([names.index(c) for c in classes], np.int64) if names else None)
    # (n, h, w, 3) is stored channels first by dataset_from_array
    ds = dataset_from_array(stack, source, labels=labels, pixel_max=pixel_max)
    return dataclasses.replace(ds, label_names=names) if names else ds


def _open(path: Path) -> Image.Image:
    """Open an image lazily (header only), turning Pillow's errors into DataError."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as err:
        raise DataError(f"{path}: cannot read this image: {err}") from err


def _scan_headers(files: list[Path]) -> tuple[list[str], tuple[int, int]]:
    """Modes of all images and their common size (width, height), from the headers alone."""
    with _open(files[0]) as image:
        first_size = image.size
    modes: list[str] = []
    for path in files:
        with _open(path) as image:
            if image.size != first_size:
                raise DataError(
                    f"{path} is {_wxh(image.size)} but the first image {files[0]} is "
                    f"{_wxh(first_size)} (width x height); all images in a folder must have "
                    "the same size"
                )
            modes.append(image.mode)
    return modes, first_size


def _wxh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _target_mode(modes: list[str], folder: Path) -> str:
    """"L" (8-bit grey), "RGB", or "deep" (16-bit / int / float grey) for the whole folder."""
    is_deep = [m in GREY_DEEP_MODES for m in modes]
    is_colour = [m not in GREY_DEEP_MODES and m not in GREY_8BIT_MODES for m in modes]
    if any(is_colour) and any(is_deep):
        raise DataError(
            f"{folder}: mixes colour images with high-bit-depth greyscale images "
            f"(modes {sorted(set(modes))}); convert them to one kind first"
        )
    if any(is_colour):
        return "RGB"
    return "deep" if any(is_deep) else "L"


def _read_stack(files: list[Path], size: tuple[int, int], target: str) -> np.ndarray:
    """Decode every image into one array: (n, h, w) for grey, (n, h, w, 3) for RGB."""
    width, height = size
    shape = (len(files), height, width) + ((3,) if target == "RGB" else ())
    stack = np.empty(shape, dtype=np.float32 if target == "deep" else np.uint8)
    for index, path in enumerate(files):
        with _open(path) as image:
            try:
                stack[index] = _pixels(image, target)
            except (OSError, ValueError, SyntaxError) as err:
                raise DataError(f"{path}: cannot decode this image: {err}") from err
    return stack


def _pixels(image: Image.Image, target: str) -> np.ndarray:
    """Pixels of one image in the folder's target mode."""
    if target == "deep":
        return np.asarray(image.convert("F") if image.mode in GREY_8BIT_MODES else image)
    return np.asarray(image if image.mode == target else image.convert(target))
