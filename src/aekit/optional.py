"""Optional dependencies: a clear error naming the extra to install, before any work starts."""

from __future__ import annotations

import importlib.util

from aekit.errors import ConfigError


def require(module: str, extra: str, feature: str) -> None:
    """Raise :class:`ConfigError` when ``module`` is not installed.

    Args:
        module: the import name (``onnx``).
        extra: the aekit extra that installs it (``export``).
        feature: what needs it, for the message (``aekit export``).
    """
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{feature} needs the `{module}` package, which is not installed: "
                          f"pip install 'aekit[{extra}]' (or pip install {module})")
