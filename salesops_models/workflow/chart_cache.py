"""A cache of drawn charts (PNG), beside the stage cache, so a sweep's children draw each chart once.

The children of a commission-plan sweep share their territory, forecast and pipeline tables, so
most of their report's charts are the same picture; drawing them (matplotlib, seconds per chart on
the larger instances) was most of a child's publication time. A chart is stored under a key made
of (i) the chart function (module and qualified name), (ii) the code fingerprint the stage cache
uses (package version and a digest of the package's files, library versions), (iii) matplotlib's
version and its current ``rcParams`` (a style changes the picture) and (iv) the content of every
argument the function is called with: each table's column names, dtypes, index and values (bit
for bit), each label and number (so the scenario name in a panel title is part of the key).

Layout: ``<stage cache>/charts/<key[:2]>/<key>.chart``, one file per chart: a header line
``salesops-chart <format> <key> <sha256 of the PNG>`` and the PNG bytes. A file is written to a
temporary name and renamed into place (two workers drawing the same chart both succeed); on a hit
the header's key and digest are checked against the bytes, so a truncated, edited or foreign entry
is ignored (logged), the chart is drawn again and the entry replaced. The cache is never trusted,
only verified.

An argument the key cannot describe exactly (an object column holding lists, an arbitrary object)
makes the chart be drawn without the cache, never cached under an incomplete key.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from salesops_models.safe_io import atomic_write_bytes
from salesops_models.workflow.cache import StageCache, code_fingerprint
from salesops_models.workflow.charts import figure_png

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

#: bump when the entry layout or the key's ingredients change: older entries then never match
CHART_FORMAT = 1
#: the stage cache's sub-folder that holds the charts
CHARTS_DIR = "charts"
_MAGIC = b"salesops-chart"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: the cell types of an object column whose content the key describes exactly
_SCALARS = frozenset({str, bool, int, float, type(None), np.str_, np.bool_, np.int64, np.float64})


class UnhashableChartInput(TypeError):
    """An argument of a chart whose content the key cannot describe exactly (drawn uncached)."""


# ------------------------------------------------------------------------------------------------
# the key
# ------------------------------------------------------------------------------------------------


def _feed_array(h: Any, values: np.ndarray) -> None:
    if values.dtype == object:
        raise UnhashableChartInput("object array")
    h.update(f"nd:{values.dtype.str}:{values.shape};".encode())
    h.update(np.ascontiguousarray(values).tobytes())


def _feed_column(h: Any, col: pd.Series | pd.Index) -> None:
    h.update(f"col:{col.dtype!s}:{len(col)};".encode())
    if col.dtype == object:
        # pandas hashes a mixed object cell through its string form: 1 and "1" would collide, and
        # a container's string form need not be its content; so the cells' types go in too, and
        # only plain scalars are accepted
        types = [type(v) for v in col]
        if not all(t in _SCALARS for t in types):
            raise UnhashableChartInput("object column with non-scalar cells")
        h.update("|".join(t.__name__ for t in types).encode())
    try:
        hashed = pd.util.hash_pandas_object(col, index=False, categorize=False)
    except (TypeError, ValueError) as exc:
        raise UnhashableChartInput(str(exc)) from exc
    h.update(hashed.to_numpy().tobytes())


def _feed(h: Any, value: Any) -> None:
    """Add ``value``'s type and exact content to the hash ``h`` (raises UnhashableChartInput)."""
    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, np.generic):
        h.update(f"np:{value.dtype.str}:".encode() + value.tobytes() + b";")
    elif isinstance(value, pd.DataFrame):
        h.update(f"df:{value.shape};".encode())
        _feed(h, [repr(c) for c in value.columns])
        _feed(h, [repr(n) for n in value.index.names])
        _feed_column(h, value.index)
        for name in value.columns:
            _feed_column(h, value[name])
    elif isinstance(value, pd.Series):
        h.update(f"series:{value.name!r};".encode())
        _feed(h, [repr(n) for n in value.index.names])
        _feed_column(h, value.index)
        _feed_column(h, value)
    elif isinstance(value, np.ndarray):
        _feed_array(h, value)
    elif isinstance(value, Mapping):
        h.update(f"map:{len(value)};".encode())
        for k, v in value.items():  # in order: the order decides the panels and the legend
            _feed(h, k)
            _feed(h, v)
    elif isinstance(value, list | tuple):
        h.update(f"{type(value).__name__}:{len(value)};".encode())
        for v in value:
            _feed(h, v)
    else:
        raise UnhashableChartInput(type(value).__name__)


@functools.lru_cache(maxsize=1)
def _matplotlib_version() -> str:
    # importlib.metadata scans the site-packages on every call (about 15 ms each here): once a process
    return importlib.metadata.version("matplotlib")


def _style_digest() -> str:
    import matplotlib

    items = sorted((k, repr(v)) for k, v in matplotlib.rcParams.items())
    return hashlib.sha256(repr(items).encode()).hexdigest()


def chart_key(draw: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    """The cache key of ``draw(*args, **kwargs)`` (hex SHA-256); raises UnhashableChartInput."""
    name = getattr(draw, "__qualname__", "")
    if not name or "<" in name:  # a lambda or a local function has no stable identity
        raise UnhashableChartInput(f"chart function {draw!r} has no stable name")
    h = hashlib.sha256()
    ident = {
        "format": CHART_FORMAT,
        "function": f"{draw.__module__}.{name}",
        "code": code_fingerprint(),
        "matplotlib": _matplotlib_version(),
        "style": _style_digest(),
    }
    h.update(json.dumps(ident, sort_keys=True).encode())
    _feed(h, tuple(args))
    _feed(h, dict(sorted(kwargs.items())))
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------
# the store
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartCache:
    """A folder of verified chart PNGs (see the module docstring).

    Attributes
    ----------
    root
        The folder (``<stage cache>/charts``).
    """

    root: Path

    @classmethod
    def beside(cls, stage_cache: StageCache) -> ChartCache:
        """The chart cache stored in ``stage_cache``'s folder."""
        return cls(stage_cache.root / CHARTS_DIR)

    def entry_path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.chart"

    def load(self, key: str) -> bytes | None:
        """The PNG of a valid entry, or None (missing; corrupt or foreign entries are logged)."""
        path = self.entry_path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("chart cache: %s unreadable (%s); the chart is drawn again", path, exc)
            return None
        header, sep, png = blob.partition(b"\n")
        parts = header.split(b" ")
        if (
            not sep
            or len(parts) != 4
            or parts[:3] != [_MAGIC, str(CHART_FORMAT).encode(), key.encode()]
            or parts[3] != hashlib.sha256(png).hexdigest().encode()
            or not png.startswith(_PNG_SIGNATURE)
        ):
            log.warning("chart cache: entry %s ignored (corrupt or foreign); the chart is drawn again", path)
            return None
        with contextlib.suppress(OSError):  # last use, for StageCache.prune()
            os.utime(path)
        return png

    def store(self, key: str, png: bytes) -> None:
        """Save ``png`` under ``key`` (atomically; a full disk or read-only cache only logs)."""
        header = b" ".join(
            [_MAGIC, str(CHART_FORMAT).encode(), key.encode(), hashlib.sha256(png).hexdigest().encode()]
        )
        try:
            atomic_write_bytes(self.entry_path(key), header + b"\n" + png)
        except OSError as exc:
            log.warning("chart cache: entry %s not saved (%s)", key[:12], exc)


#: the cache the charts drawn in this context go through (set by :func:`using`)
_ACTIVE: ContextVar[ChartCache | None] = ContextVar("salesops_chart_cache", default=None)


@contextlib.contextmanager
def using(cache: ChartCache | None) -> Iterator[None]:
    """Draw the charts of the enclosed code through ``cache`` (None: draw every chart)."""
    token = _ACTIVE.set(cache)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def chart_png(draw: Callable[..., Figure | None], *args: Any, **kwargs: Any) -> bytes | None:
    """The PNG of ``draw(*args, **kwargs)``, or None when it has nothing to draw.

    Through the active :class:`ChartCache` (see :func:`using`) when there is one: a verified
    entry is returned as is, otherwise the chart is drawn and saved. The bytes are the same either
    way (matplotlib's PNG writer is deterministic for a given figure, library and style).
    """
    cache = _ACTIVE.get()
    key = None
    if cache is not None:
        try:
            key = chart_key(draw, args, kwargs)
        except UnhashableChartInput as exc:
            log.debug("chart cache: %s drawn uncached (%s)", getattr(draw, "__name__", draw), exc)
        if key is not None and (png := cache.load(key)) is not None:
            return png
    fig = draw(*args, **kwargs)
    if fig is None:
        return None
    png = figure_png(fig)
    if cache is not None and key is not None:
        cache.store(key, png)
    return png
