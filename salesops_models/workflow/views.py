"""What the report templates render: sections of blocks (tables, figures, facts, notes), already formatted.

The report's Python side turns tables into these small objects; the Jinja2 templates in
``workflow/templates/`` turn them into markup and escape every string (autoescape), so no HTML is
written in Python. A section that cannot be computed says why in a note instead of failing the page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from salesops_models.workflow.charts import figure_png, png_data_uri
from salesops_models.workflow.collect import TABLE_STAGE, TABLES, ScenarioResults

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

OPEN_ROWS = 15  # longer tables render inside a closed <details>


# ------------------------------------------------------------------------------------------------
# formatting
# ------------------------------------------------------------------------------------------------


def is_missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _number(v: Any) -> float:
    return float(v)


FORMATS: dict[str, Callable[[Any], str]] = {
    "money": lambda v: f"{_number(v):,.0f}",
    "money2": lambda v: f"{_number(v):,.2f}",
    "share": lambda v: f"{100 * _number(v):.1f}%",
    "pct0": lambda v: f"{100 * _number(v):.0f}%",
    "ratio": lambda v: f"{_number(v):.3f}",
    "num1": lambda v: f"{_number(v):,.1f}",
    "num2": lambda v: f"{_number(v):,.2f}",
    "int": lambda v: f"{int(round(_number(v))):,d}",
    "multiple": lambda v: f"{_number(v):.2f}x",
    "seconds": lambda v: f"{_number(v):,.1f} s",
    "text": str,
    "bool": lambda v: "yes" if bool(v) else "no",
}


def fmt(value: Any, kind: str) -> str:
    """``value`` formatted as ``kind`` (see :data:`FORMATS`); ``n/a`` when missing or not a number."""
    if is_missing(value):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    try:
        return FORMATS[kind](value)
    except (TypeError, ValueError):
        return str(value)


# ------------------------------------------------------------------------------------------------
# view objects
# ------------------------------------------------------------------------------------------------


@dataclass
class Cell:
    text: str
    cls: str = ""
    href: str | None = None
    title: str | None = None


@dataclass
class Column:
    """A table column: ``key`` in the frame, header, format (see :data:`FORMATS`), unit line."""

    key: str
    header: str
    kind: str = "text"
    unit: str = ""


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]]
    id: str = ""
    caption: str = ""
    row_classes: list[str] = field(default_factory=list)
    row_keys: list[str] = field(default_factory=list)
    collapse: bool = True  # False: always open, however long

    @property
    def collapsed(self) -> bool:
        return self.collapse and len(self.rows) > OPEN_ROWS


@dataclass
class Block:
    """One thing in a section: ``kind`` is table, figure, facts, note, text, links or pre."""

    kind: str
    title: str = ""
    text: str = ""
    table: Table | None = None
    uri: str = ""
    facts: list[tuple[str, str, str]] = field(default_factory=list)  # (label, value, unit)
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, href)


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    intro: str = ""

    def add(self, *blocks: Block | None) -> Section:
        self.blocks.extend(b for b in blocks if b is not None)
        return self


def note(text: str) -> Block:
    return Block("note", text=text)


def text(value: str) -> Block:
    return Block("text", text=value)


def facts(pairs: Sequence[tuple[str, Any, str]], metrics: Mapping[str, Any] | None = None) -> Block | None:
    """Label/value pairs: each value is ``(label, value or metric name, format)``; with ``metrics``, a
    string value is looked up there. Missing values are left out; None when none is left."""
    out = []
    for label, value, kind in pairs:
        v = metrics.get(value) if metrics is not None and isinstance(value, str) else value
        if not is_missing(v):
            out.append((label, fmt(v, kind), ""))
    return Block("facts", facts=out) if out else None


def figure(title: str, fig: Figure | None, missing: str = "Nothing to draw.") -> Block:
    """A chart as an embedded PNG, or a note when there is nothing to draw."""
    if fig is None:
        return note(f"{title}: {missing}")
    return Block("figure", title=title, uri=png_data_uri(figure_png(fig)))


def chart(title: str, draw: Callable[..., Figure | None], *args: Any, missing: str = "Nothing to draw.",
          **kwargs: Any) -> Block:  # fmt: skip
    """``figure(title, draw(*args, **kwargs), missing)`` through the active chart cache.

    A chart whose inputs (tables, labels) and code are unchanged is not drawn again: its verified
    PNG comes from :mod:`~salesops_models.workflow.chart_cache` (the same bytes a fresh drawing
    gives).
    """
    from salesops_models.workflow.chart_cache import chart_png

    png = chart_png(draw, *args, **kwargs)
    if png is None:
        return note(f"{title}: {missing}")
    return Block("figure", title=title, uri=png_data_uri(png))


def table(
    df: pd.DataFrame | None,
    columns: Sequence[Column],
    *,
    id: str = "",
    caption: str = "",
    cell_class: Callable[[str, Any], str] | None = None,
    links: Mapping[str, Callable[[Mapping[str, Any]], str | None]] | None = None,
    row_class: Callable[[Mapping[str, Any]], str] | None = None,
    key: str | None = None,
    collapse: bool = True,
) -> Block | None:
    """A table block from a frame; columns the frame lacks are left out (None if none is left).

    Parameters
    ----------
    cell_class
        ``(column key, value) -> CSS class`` for colour-coded cells.
    links
        Column key -> ``row -> href`` for linked cells.
    row_class
        ``row -> CSS class`` of the row.
    key
        Column whose value goes into the row's ``data-key`` attribute (for tests and anchors).
    collapse
        Put a long table in a closed ``<details>`` (False: always show every row).
    """
    if df is None:
        return None
    cols = [c for c in columns if c.key in df.columns]
    if not cols:
        return None
    rows, classes, keys = [], [], []
    for rec in df.to_dict("records"):
        cells = []
        for c in cols:
            v = rec.get(c.key)
            shown = fmt(v, c.kind)
            cls = "num" if c.kind not in ("text", "bool") else ""
            if shown == "n/a":
                cls = f"{cls} na".strip()
            elif cell_class is not None:
                cls = f"{cls} {cell_class(c.key, v)}".strip()
            href = links[c.key](rec) if links and c.key in links else None
            cells.append(Cell(shown, cls, href))
        rows.append(cells)
        classes.append(row_class(rec) if row_class else "")
        keys.append(str(rec.get(key, "")) if key else "")
    return Block("table", table=Table(cols, rows, id, caption, classes, keys, collapse))


# ------------------------------------------------------------------------------------------------
# why a table is missing
# ------------------------------------------------------------------------------------------------


def missing_note(results: ScenarioResults, key: str, hint: str = "") -> Block:
    """A note that says why table ``key`` is not in this scenario's results."""
    stage = TABLE_STAGE.get(key, "")
    state = results.stage_state(stage) if stage else "not run"
    name = TABLES.get(key, key)
    if state == "disabled":
        why = f"the {stage} stage is disabled in this scenario ({stage}.enabled: false)"
    elif state == "failed":
        err = results.metrics.get("error")
        why = f"the {stage} stage failed" + (f": {err}" if err else "")
    elif state == "not run":
        why = f"the {stage} stage did not run" + (
            " (an earlier stage failed)" if results.status == "failed" else ""
        )
    else:
        unreadable = [p for p in results.problems if p.startswith(name)]
        why = unreadable[0] if unreadable else f"the {stage} stage ran but wrote no '{name}' table"
    return note(f"Not available: {why}." + (f" {hint}" if hint and state == "ran" else ""))


def guarded(build: Callable[[ScenarioResults], Section], results: ScenarioResults, title: str) -> Section:
    """Build one section; a rendering error becomes a note in that section (and a logged traceback)
    instead of a missing page."""
    try:
        return build(results)
    except Exception as exc:  # a broken section must not take the rest of the report with it
        log.exception("report section %r of %s failed", title, results.out_dir)
        anchor = build.__name__.removesuffix("_section")
        return Section(anchor, title).add(
            note(f"This section could not be rendered: {type(exc).__name__}: {exc}")
        )
