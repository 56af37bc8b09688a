"""Reading scenario files: the YAML, the ``extends`` chain and the files a scenario names.

Kept apart from :mod:`salesops_models.scenario` (the pydantic models, which import every model
package) so that a hostile or broken file is refused before anything heavy is imported: the CLI
reads every scenario file through here first (an alias bomb or ``extends: /dev/zero`` ends in a
one-line error within the memory of a bare Python process).

Precedence (lowest first): the base scenario named by ``extends`` (recursively), the scenario file
itself. Mappings are deep-merged; lists and scalars are replaced whole. Every file named inside
(``extends``, ``data.path``, ``data.mapping``, plan files, ``territory.adjacency``) is resolved
against the folder of the file that names it and must stay inside it unless the user allows more
(:class:`~salesops_models.safe_io.PathRule`).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from salesops_models.errors import ScenarioError
from salesops_models.safe_io import PathRule, is_path_reference, load_yaml

#: A scenario's name: it names its results folder, so letters, digits, '_', '.', '-' only.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: dicts recursively, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a scenario file: a YAML mapping, read by the one safe loader (``safe_io.load_yaml``).

    An empty file (or one holding only comments) is an error rather than a silent all-defaults
    scenario.
    """
    doc = load_yaml(path, "scenario file", error=ScenarioError)
    if doc is None or doc == {}:
        raise ScenarioError(
            f"{path}: the file is empty; a scenario states at least its name (name: my_scenario) or the "
            "scenario it extends (extends: baseline.yaml). Delete the file if it is not a scenario."
        )
    if not isinstance(doc, dict):
        raise ScenarioError(
            f"{path}: the top level must be a mapping of keys (name:, data:, ...), got {type(doc).__name__}."
        )
    return doc


def resolve_document(
    path: str | Path, _chain: tuple[Path, ...] = (), rule: PathRule | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Return the merged raw document of a scenario and the chain of files it came from (base first).

    Every file named inside (``extends``, ``data.path``, ``data.mapping``, plan files) is resolved
    against the folder of the file that names it and must stay inside it, unless ``rule`` allows
    more (see :class:`~salesops_models.safe_io.PathRule`; default: the user's ``--allow-dir``
    grants from ``SALESOPS_ALLOW_DIRS``).
    """
    rule = rule or PathRule.from_env()
    path = Path(path).resolve()
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise ScenarioError(f"{path}: 'extends' forms a cycle: {cycle}.")
    doc = read_yaml(path)
    _resolve_relative_paths(doc, path, rule)  # each file's paths are relative to that file
    base_name = doc.get("extends")
    if base_name is None:
        return doc, [str(path)]
    if not isinstance(base_name, str) or not base_name.strip():
        raise ScenarioError(f"{path}: 'extends' must be a file name such as baseline.yaml.")
    base_path = rule.resolve(base_name, path.parent, path, "extends", error=ScenarioError)
    if not base_path.is_file():
        what = "is a folder" if base_path.is_dir() else "does not exist" if not base_path.exists() else "is not a file"
        raise ScenarioError(
            f"{path}: extends '{base_name}', which {what} (looked for {base_path}); name the base scenario "
            "file, e.g. baseline.yaml."
        )
    base_doc, chain = resolve_document(base_path, (*_chain, path), rule)
    # A name and a description belong to their own file: a child without a name takes its file name.
    base_doc.pop("name", None)
    base_doc.pop("description", None)
    return deep_merge(base_doc, doc), [*chain, str(path)]


def _resolve_relative_paths(doc: dict[str, Any], file: Path, rule: PathRule) -> None:
    """Make the paths a scenario file names absolute, checked by the path rule: ``data.path``,
    ``data.mapping``, plan files in ``compensation.plans`` (shipped names stay names) and the
    adjacency table ``territory.adjacency``."""

    def checked(value: str, key: str) -> str:
        return str(rule.resolve(value, file.parent, file, key, error=ScenarioError))

    data = doc.get("data")
    if isinstance(data, dict):
        if isinstance(data.get("path"), str) and data["path"].strip():
            data["path"] = checked(data["path"], "data.path")
        mapping = data.get("mapping")
        if isinstance(mapping, str) and mapping.strip() and is_path_reference(mapping):
            data["mapping"] = checked(mapping, "data.mapping")
    comp = doc.get("compensation")
    if isinstance(comp, dict) and isinstance(comp.get("plans"), list):
        comp["plans"] = [
            checked(p, f"compensation.plans[{i}]") if isinstance(p, str) and is_path_reference(p) else p
            for i, p in enumerate(comp["plans"])
        ]
    territory = doc.get("territory")
    if (
        isinstance(territory, dict)
        and isinstance(territory.get("adjacency"), str)
        and territory["adjacency"].strip()
    ):
        territory["adjacency"] = checked(territory["adjacency"], "territory.adjacency")


def scenario_files(paths: list[str | Path]) -> list[Path]:
    """Expand folders to their ``*.yaml``/``*.yml`` files (sorted); keep files as given."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yaml"), *p.glob("*.yml")]))
        elif p.exists():
            out.append(p)
        else:
            raise ScenarioError(f"{p}: no such scenario file or folder.")
    if not out:
        raise ScenarioError(f"no scenario files (*.yaml) found in {', '.join(map(str, paths))}.")
    return out
