"""Sweeps: one scenario file that stands for many, varying some settings over a grid or a list.

A scenario may carry a ``sweep:`` section (it is not a setting; it is removed before validation)::

    sweep:
      grid:                               # every combination (cartesian product)
        compensation.primary_plan: [ae_standard, ae_retroactive_capped]
        quota.over_assignment: [0.0, 0.05, 0.10]

    sweep:
      list:                               # exactly these variants
        - {compensation.primary_plan: ae_standard}
        - {compensation.primary_plan: new_hire_draw, quota.over_assignment: 0.05}

Each combination is a *child scenario*, named ``<name>.<key>-<value>_...`` (the leaf of each key
path and a short label of its value; ``<name>.<nnn>`` when that would not be a valid, unique name),
and validated like any scenario: an unknown key path or a value that fails validation is an error
naming the file, the key and the child. A sweep that expands to more than :data:`SWEEP_LIMIT`
children is refused unless the user confirms (``salesops batch --yes``).

Children run as one batch; the stage cache (:mod:`salesops_models.workflow.cache`) computes the
stages they share (everything upstream of the swept settings) once.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salesops_models.config_base import StrictModel, section_model
from salesops_models.errors import ScenarioError
from salesops_models.safe_io import PathRule, short_repr
from salesops_models.scenario_source import NAME_PATTERN, _resolve_relative_paths

#: children a sweep may expand to without the user's confirmation (``--yes``)
SWEEP_LIMIT = 50
#: the batch folder's record of its sweeps (for the index's sensitivity view)
SWEEPS_FILE = "sweeps.json"
#: keys a sweep may not vary: they name the scenario or its base, they set nothing
NOT_SWEPT = frozenset({"name", "description", "extends", "sweep"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class SweepChild:
    """One child scenario of a sweep.

    Attributes
    ----------
    name
        The child's scenario name.
    parent
        The sweep scenario's name.
    file
        The sweep scenario's file.
    values
        Key path -> the value this child sets.
    base
        Key path -> the value the sweep scenario itself has (None when it sets none and the
        default is unknown).
    """

    name: str
    parent: str
    file: Path
    values: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)

    def changes(self) -> dict[str, Any]:
        """The ``changes.json`` document of the child: what it changes versus the sweep scenario."""
        return {
            "base": self.parent,
            "base_file": self.file.name,
            "sweep": self.parent,
            "changes": [{"key": k, "base": self.base.get(k), "value": v} for k, v in self.values.items()],
        }


def _error(path: Path, text: str) -> ScenarioError:
    return ScenarioError(f"{path}: sweep: {text}")


def sweep_variants(path: Path, spec: Any) -> list[dict[str, Any]]:
    """The variants a ``sweep:`` section states, each ``{key path: value}``, in order."""
    if not isinstance(spec, dict) or set(spec) - {"grid", "list"} or len(spec) != 1:
        raise _error(
            path,
            "give exactly one of 'grid:' (key path -> list of values, every combination) or 'list:' "
            f"(a list of {{key path: value}} variants); got {short_repr(spec)}.",
        )
    if "grid" in spec:
        grid = spec["grid"]
        if not isinstance(grid, dict) or not grid:
            raise _error(path, "'grid' must map key paths to lists of values, e.g. quota.over_assignment: [0, 0.05].")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise _error(path, f"grid key '{key}': give a non-empty list of values, got {short_repr(values)}.")
        keys = list(grid)
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]
    variants = spec["list"]
    if not isinstance(variants, list) or not variants:
        raise _error(path, "'list' must be a non-empty list of {key path: value} variants.")
    for i, v in enumerate(variants):
        if not isinstance(v, dict) or not v:
            raise _error(path, f"list entry {i + 1}: give a mapping of key path -> value, got {short_repr(v)}.")
    return [dict(v) for v in variants]


def check_key_path(model: Any, key: Any) -> str | None:
    """Why ``key`` is not a settable key path of ``model`` (a pydantic model; None when it is)."""
    if not isinstance(key, str) or not key.strip():
        return f"key {short_repr(key)} is not a key path such as compensation.primary_plan"
    parts = key.split(".")
    if parts[0] in NOT_SWEPT:
        return f"'{parts[0]}' names the scenario; it cannot be swept"
    current: Any = model
    for i, part in enumerate(parts):
        fields = getattr(current, "model_fields", None)
        if fields is None:  # a free mapping (e.g. quota_relief): its keys are data
            return None
        if part not in fields:
            where = ".".join(parts[:i]) or "the top level"
            return f"'{part}' is not a setting of {where} (allowed: {', '.join(sorted(fields))})"
        current = section_model(fields[part].annotation)
        if current is None and i < len(parts) - 1:
            annotation = str(fields[part].annotation)
            if "dict" not in annotation:
                return f"'{'.'.join(parts[: i + 1])}' is a value, not a section; sweep it whole"
            return None
    return None


def _set_path(doc: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = doc
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = copy.deepcopy(value)


def _get_path(doc: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def _label(value: Any) -> str:
    if isinstance(value, list | dict):
        text = "-".join(Path(str(v)).stem for v in value) if isinstance(value, list) else json.dumps(value)
    else:
        text = Path(value).stem if isinstance(value, str) and ("/" in value or value.endswith(".yaml")) else str(value)
    return _UNSAFE.sub("_", text).strip("_.-")[:24] or "x"


def child_names(parent: str, variants: list[dict[str, Any]]) -> list[str]:
    """Names of the children: ``<parent>.<leaf>-<value>_...``, or ``<parent>.<nnn>`` when too long or
    not unique."""
    names = []
    for variant in variants:
        label = "_".join(f"{k.split('.')[-1]}-{_label(v)}" for k, v in variant.items())
        names.append(f"{parent}.{label}")
    width = len(str(len(variants)))
    out = []
    for i, n in enumerate(names):
        if names.count(n) > 1 or not NAME_PATTERN.match(n):
            n = f"{parent[: 63 - width - 1]}.{i + 1:0{width}d}"
        out.append(n)
    return out


def expand_sweep(
    path: Path,
    doc: dict[str, Any],
    model: type[StrictModel],
    limit: int | None = SWEEP_LIMIT,
    rule: PathRule | None = None,
) -> list[tuple[SweepChild, dict[str, Any]]]:
    """Expand a resolved scenario document with ``sweep:`` into its children's documents (not validated).

    Parameters
    ----------
    path
        The scenario file (for messages).
    doc
        Its resolved document (``extends`` merged), with the ``sweep`` key.
    model
        The scenario model (:class:`~salesops_models.scenario.Scenario`): the key paths a child may
        set, and the base values each child's changes are reported against.
    limit
        Most children allowed; None: no limit (the user confirmed with ``--yes``).
    rule
        The path rule for files a swept value names (``data.path``, plan files): relative to the
        sweep file's folder and kept inside it, as in the file itself (default: the user's grants).

    Raises
    ------
    ScenarioError
        A malformed ``sweep:``, an unknown key path (naming the key and the first child that sets
        it), or more children than ``limit``.
    """
    from pydantic import ValidationError

    doc = copy.deepcopy(doc)
    variants = sweep_variants(path, doc.pop("sweep"))
    parent = str(doc.get("name") or path.stem)
    names = child_names(parent, variants)
    for name, variant in zip(names, variants, strict=True):
        for key in variant:
            why = check_key_path(model, key)
            if why:
                raise _error(path, f"key '{key}' (child scenario '{name}'): {why}.")
    if limit is not None and len(variants) > limit:
        raise _error(
            path,
            f"expands to {len(variants)} child scenarios, more than the limit of {limit}; narrow the grid, or "
            "confirm with --yes to run them all.",
        )
    try:
        base_doc = model.model_validate(doc).model_dump(mode="json")
    except ValidationError:
        base_doc = doc  # the sweep scenario alone may be incomplete; its children are validated below
    out = []
    description = str(doc.get("description") or "")
    for name, variant in zip(names, variants, strict=True):
        child = copy.deepcopy(doc)
        values: dict[str, Any] = {}
        for key, value in variant.items():
            _set_path(values, key, value)
        _resolve_relative_paths(values, path.resolve(), rule or PathRule.from_env())  # as if in the file
        for key in variant:
            _set_path(child, key, _get_path(values, key))
        child["name"] = name
        what = ", ".join(f"{k}={short_repr(v)}" for k, v in variant.items())
        child["description"] = f"{description} [sweep {parent}: {what}]".strip()
        base = {k: _get_path(base_doc, k) for k in variant}
        out.append((SweepChild(name, parent, path, dict(variant), base), child))
    return out


def child_error_prefix(path: Path, child: SweepChild) -> str:
    """How a child's validation errors name it: the file, the child and the values it sets."""
    what = ", ".join(f"{k}={short_repr(v)}" for k, v in child.values.items())
    return f"{path} [sweep child '{child.name}': {what}]"


def sweeps_document(children: dict[str, SweepChild]) -> dict[str, Any]:
    """``sweeps.json``: per sweep scenario, its swept keys, their base values and each child's values."""
    out: dict[str, Any] = {}
    for name, child in children.items():
        sweep = out.setdefault(child.parent, {"file": str(child.file), "keys": [], "base": {}, "children": {}})
        for key in child.values:
            if key not in sweep["keys"]:
                sweep["keys"].append(key)
        sweep["base"].update(child.base)
        sweep["children"][name] = child.values
    return out
