"""Exceptions raised by aekit.

Every error caused by user input derives from :class:`AekitError`; its message names the file or
parameter, what was received and what is allowed. The CLI prints the message alone and exits 2.
"""

from __future__ import annotations


class AekitError(Exception):
    """Base class of every error aekit raises on purpose."""


class ConfigError(AekitError, ValueError):
    """An option has a value outside what is allowed."""


class DataError(AekitError, ValueError):
    """Input data is missing, unreadable or invalid (NaN, wrong rank, non-numeric...)."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data file or folder named by the user does not exist or a built-in set is not installed."""


class FormatError(AekitError, ValueError):
    """A file aekit reads (model, checkpoint, compressed codes) is malformed or unsafe."""


class TrainingError(AekitError, RuntimeError):
    """Training cannot go on (for example non-finite values after every allowed rollback)."""
