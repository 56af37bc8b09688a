"""The Jinja2 environment of the HTML outputs (``workflow/templates/*.html.j2``).

Autoescape is on for every template, so any string that comes from data (scenario names, rep ids,
error messages, settings) is escaped where it is rendered; undefined names raise, so a template
and its view objects cannot drift apart silently.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from salesops_models.safe_io import atomic_write_text

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def environment() -> Any:
    """The shared :class:`jinja2.Environment` (built once per process)."""
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with ``context``."""
    return str(environment().get_template(template).render(**context))


def write_text_atomic(path: str | os.PathLike[str], text: str, durable: bool = True) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and ``os.replace``, so a
    reader never sees half a page (``safe_io.atomic_write_text``, the one atomic writer); see
    ``safe_io.atomic_path`` for ``durable``."""
    return atomic_write_text(path, text, durable=durable)
