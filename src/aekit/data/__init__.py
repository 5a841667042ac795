"""Data sources, validation and scaling.

Every source returns a :class:`Dataset`: one validated float32 matrix (samples x features) of raw
values plus what one sample is (its shape, image or tabular, labels, the value of a white pixel).
"""

from aekit.data.dataset import Dataset
from aekit.data.scaling import Scaler
from aekit.data.sources import BUILTIN_NAMES, FILE_KINDS, load
from aekit.data.validate import check_n_features, validate_array

__all__ = [
    "BUILTIN_NAMES",
    "FILE_KINDS",
    "Dataset",
    "Scaler",
    "check_n_features",
    "load",
    "validate_array",
]
