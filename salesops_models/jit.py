"""Optional numba compilation of hot loops, shared by the models.

``njit`` compiles a function with numba when it is installed and ``SALESOPS_NUMBA`` is not ``0``;
otherwise it returns the function unchanged, so every kernel also runs as plain Python (slowly, with
the same arithmetic). ``AVAILABLE`` says which.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

try:  # pragma: no cover - exercised when numba is installed
    if os.environ.get("SALESOPS_NUMBA", "1") == "0":
        raise ImportError("disabled by SALESOPS_NUMBA=0")
    from numba import njit as _numba_njit

    AVAILABLE = True
except ImportError:  # pragma: no cover
    AVAILABLE = False
    _numba_njit = None


def njit(*args: Any, **kwargs: Any) -> Any:
    """``numba.njit`` when available, else the identity decorator (with or without arguments)."""
    if _numba_njit is not None:
        return _numba_njit(*args, **kwargs)
    if args and callable(args[0]):
        return args[0]

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        return func

    return decorate
