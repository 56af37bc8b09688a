"""Incremental recompute: a stage's outputs cached under a key of everything they depend on.

A stage's result depends on (i) the scenario keys its contract declares (``CONTRACT.config``),
(ii) the content of the tables it reads (``CONTRACT.reads`` and ``CONTRACT.uses``: the bytes of
each upstream Parquet file, or "absent"; the ``company`` pseudo-table is every file the data stage
cached under ``data/``), (iii) the files those config keys name (a CRM export folder, a mapping, a
commission plan file: their bytes, so an export edited in place is not served stale), (iv) the
code (package version, a fingerprint of the package's own files, so an edited editable install
does not serve stale results either, and the versions of the numerical libraries) and (v) the
master seed. The key is the SHA-256 of all of these. The contracts are enforced while a stage runs
(:mod:`~salesops_models.workflow.contracts`), so a stage cannot read anything the key leaves out.

Changing only ``compensation:`` therefore changes only the compensation stage's key: every other
stage is restored from the cache. In a sweep, children that share upstream settings share those
stages' entries.

Layout: ``<cache>/<stage>/<key>/`` holds the stage's output files (tables, figures, the data
stage's ``data/`` folder, its metrics file) under ``files/`` and a ``manifest.json`` naming the key,
the stage, the code version and the SHA-256 of every file. An entry is built in a temporary folder
and renamed into place in one step, so two workers that compute the same stage at once both
succeed (the first rename wins, the other's copy is dropped) and a reader never sees half an
entry. On a hit every file is checked against its manifest hash before it is used; an entry with a
bad manifest, another key, another code version or a file that does not match is ignored (logged),
the stage is computed and the entry replaced. The cache is never trusted, only verified.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salesops_models import __version__
from salesops_models.safe_io import atomic_path, atomic_write_text
from salesops_models.scenario import Scenario
from salesops_models.workflow.contracts import COMPANY, PROVENANCE_LIBRARIES, StageContract

log = logging.getLogger(__name__)

#: bump when the layout or the key's ingredients change: older entries then never match
CACHE_FORMAT = 1
#: environment variable naming the cache folder (``--cache-dir`` sets it for workers and kernels)
CACHE_DIR_ENV = "SALESOPS_CACHE_DIR"
#: the scenario folder's pointer to the cache a batch uses (read by notebook kernels)
POINTER_FILE = "cache.json"
#: folders of a scenario's results that are never a stage's output
NOT_OUTPUTS = frozenset({"logs", "notebooks", "attempts", "statements"})
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files_under(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for f in sorted(files):
            if not f.startswith("."):
                yield Path(root) / f


def folder_digest(folder: Path) -> str:
    """SHA-256 over every file of ``folder`` (relative path and bytes), in a fixed order."""
    h = hashlib.sha256()
    for f in _files_under(folder):
        h.update(str(f.relative_to(folder)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> dict[str, str]:
    """The code that computes a stage: package version, a digest of its files, library versions.

    The digest covers the package's ``.py`` and data files, so results computed by an edited
    (editable-install) package are never served after the edit, even when the version is the same.
    """
    pkg = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for f in _files_under(pkg):
        if "__pycache__" in f.parts or f.suffix not in {".py", ".yaml", ".yml", ".json", ".csv", ".j2"}:
            continue
        h.update(str(f.relative_to(pkg)).encode())
        h.update(sha256_file(f).encode())
    out = {"package_version": __version__, "package_digest": h.hexdigest(), "cache_format": str(CACHE_FORMAT)}
    for lib in PROVENANCE_LIBRARIES:
        try:
            out[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


def _named_files(value: Any) -> Iterator[str]:
    """Absolute paths of existing files or folders named anywhere in a config value."""
    if isinstance(value, dict):
        for v in value.values():
            yield from _named_files(v)
    elif isinstance(value, list):
        for v in value:
            yield from _named_files(v)
    elif isinstance(value, str) and os.path.isabs(value) and os.path.exists(value):
        yield value


def _table_digest(out_dir: Path, table: str) -> str:
    if table == COMPANY:
        folder = out_dir / "data"
        return folder_digest(folder) if folder.is_dir() else "absent"
    path = out_dir / f"{table}.parquet"
    return sha256_file(path) if path.is_file() else "absent"


def stage_key(scenario: Scenario, contract: StageContract, out_dir: Path) -> tuple[str, dict[str, Any]]:
    """The cache key of ``contract.stage`` for ``scenario`` with the upstream tables now in ``out_dir``.

    Returns
    -------
    tuple
        The key (hex SHA-256) and the document it hashes (kept in the manifest, for diagnosis).
    """
    doc = scenario.model_dump(mode="json")
    config = {k: doc.get(k) for k in contract.config}
    named = sorted(set(_named_files(config)))
    ingredients = {
        "stage": contract.stage,
        "config": config,
        "named_files": {
            p: folder_digest(Path(p)) if os.path.isdir(p) else sha256_file(Path(p)) for p in named
        },
        "tables": {t: _table_digest(out_dir, t) for t in sorted({*contract.reads, *contract.uses})},
        "seed": scenario.seed,
        "code": code_fingerprint(),
    }
    blob = json.dumps(ingredients, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest(), ingredients


# ------------------------------------------------------------------------------------------------
# which files a stage wrote
# ------------------------------------------------------------------------------------------------


def snapshot(out_dir: Path) -> dict[str, tuple[int, int]]:
    """``relative path -> (mtime_ns, size)`` of the files that could be stage outputs."""
    out: dict[str, tuple[int, int]] = {}
    if not out_dir.is_dir():
        return out
    for f in _files_under(out_dir):
        rel = f.relative_to(out_dir)
        if rel.parts[0] in NOT_OUTPUTS or rel.name.endswith(".timings.json"):
            continue
        st = f.stat()
        out[rel.as_posix()] = (st.st_mtime_ns, st.st_size)
    return out


def written_since(before: dict[str, tuple[int, int]], out_dir: Path) -> list[str]:
    """Files created or rewritten in ``out_dir`` since ``before`` (a :func:`snapshot`)."""
    after = snapshot(out_dir)
    return sorted(rel for rel, sig in after.items() if before.get(rel) != sig)


# ------------------------------------------------------------------------------------------------
# the store
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCache:
    """A folder of verified stage results (see the module docstring).

    Attributes
    ----------
    root
        The cache folder (default ``<results root>/.cache``).
    """

    root: Path

    def entry_dir(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def load(self, stage: str, key: str) -> dict[str, Any] | None:
        """The manifest of a valid entry, or None (missing, corrupt or foreign entries: None, logged)."""
        entry = self.entry_dir(stage, key)
        manifest_path = entry / "manifest.json"
        if not manifest_path.is_file():
            return None
        why = self._invalid(entry, stage, key)
        if why:
            log.warning("stage cache: entry %s ignored (%s); the stage is computed again", entry, why)
            return None
        with contextlib.suppress(OSError):  # last use, for prune(): a used entry is not old
            os.utime(manifest_path)
        return json.loads(manifest_path.read_text(encoding="utf-8"))

    def _invalid(self, entry: Path, stage: str, key: str) -> str | None:
        try:
            manifest = json.loads((entry / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"unreadable manifest: {exc}"
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            return "manifest is not a cache manifest"
        if manifest.get("key") != key or manifest.get("stage") != stage:
            return "manifest of another key or stage"
        if manifest.get("code") != code_fingerprint():
            return "written by another package version or code"
        files = manifest["files"]
        for rel, digest in files.items():
            f = entry / "files" / rel
            if not _safe_rel(rel) or not f.is_file():
                return f"file {rel} missing"
            if sha256_file(f) != digest:
                return f"file {rel} does not match its hash"
        return None

    def restore(self, manifest: dict[str, Any], stage: str, key: str, out_dir: Path) -> list[str]:
        """Copy a loaded entry's files into ``out_dir`` (each file atomically); return them.

        Copies, not hard links: a results file edited in place must not change the cache entry or
        another run's results. Not flushed to disk one by one (an fsync per file was a third of a
        what-if's time): the entry itself is durable and verified.
        """
        entry = self.entry_dir(stage, key) / "files"
        for rel in manifest["files"]:
            with atomic_path(out_dir / rel, durable=False) as tmp:
                shutil.copyfile(entry / rel, tmp)
        return list(manifest["files"])

    def store(self, stage: str, key: str, ingredients: dict[str, Any], out_dir: Path, files: Iterable[str]) -> bool:
        """Save ``files`` (relative to ``out_dir``) as the entry ``stage/key``; False when not saved.

        The entry is built in a temporary folder and renamed into place; when another process saved
        a valid entry first, that one stays. An invalid entry in the way is moved aside and dropped.
        """
        final = self.entry_dir(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{key}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            digests = {}
            for rel in files:
                dest = tmp / "files" / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(out_dir / rel, dest)
                digests[rel] = sha256_file(dest)
            manifest = {
                "key": key,
                "stage": stage,
                "code": code_fingerprint(),
                "files": digests,
                "ingredients": ingredients,
            }
            atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True, default=str))
            if final.exists() and self._invalid(final, stage, key):
                trash = final.parent / f".{key}.{secrets.token_hex(4)}.bad"
                try:
                    os.replace(final, trash)
                    shutil.rmtree(trash, ignore_errors=True)
                except OSError:
                    pass
            try:
                os.rename(tmp, final)  # atomic; fails when another process saved the entry first
            except OSError:
                log.info("stage cache: %s/%s already saved by another run", stage, key[:12])
                return False
            return True
        except OSError as exc:  # a full disk or a read-only cache never fails a run
            log.warning("stage cache: entry %s/%s not saved (%s)", stage, key[:12], exc)
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


    def prune(self, older_than: float, dry_run: bool = False, now: float | None = None) -> PruneResult:
        """Remove the entries (stages and charts) not used for ``older_than`` seconds.

        An entry's age is that of its last use: saving it or restoring it (a hit touches its
        manifest; a chart hit touches the chart file). Temporary folders that a killed run left are
        removed by the same rule. An entry is first renamed aside, then deleted, so a run that looks
        it up meanwhile finds it whole or not at all (and computes the stage).

        Parameters
        ----------
        older_than
            Minimum time since last use [s].
        dry_run
            Only count what would be removed.
        now
            The current time [s since the epoch] (default: the clock).
        """
        if older_than < 0:
            raise ValueError(f"older_than must be >= 0 seconds, got {older_than}")
        cutoff = (time.time() if now is None else now) - older_than
        result = PruneResult()
        if not self.root.is_dir():
            return result
        stage_entries = [
            e for d in sorted(self.root.iterdir()) if d.is_dir() and d.name != "charts" for e in sorted(d.iterdir())
        ]
        chart_entries = sorted((self.root / "charts").glob("*/*"))
        for entry in stage_entries + chart_entries:
            manifest = entry / "manifest.json"
            try:
                used = (manifest if manifest.exists() else entry).stat().st_mtime
                size = _size(entry)
            except OSError:
                continue
            if used >= cutoff:
                result.kept += 1
                result.kept_bytes += size
                continue
            result.removed += 1
            result.removed_bytes += size
            if not dry_run:
                _remove(entry)
        if not dry_run:  # folders left empty (rmdir refuses the others)
            for folder in [*sorted(self.root.glob("charts/*")), *sorted(self.root.iterdir())]:
                with contextlib.suppress(OSError):
                    folder.rmdir()
        return result


@dataclass
class PruneResult:
    """What :meth:`StageCache.prune` removed and kept (entries, and their bytes)."""

    removed: int = 0
    removed_bytes: int = 0
    kept: int = 0
    kept_bytes: int = 0


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _remove(entry: Path) -> None:
    trash = entry.with_name(f".{entry.name}.{secrets.token_hex(4)}.pruned")
    try:
        os.replace(entry, trash)
    except OSError:
        return  # gone already, or in use by a writer's rename: the next prune takes it
    if trash.is_dir():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            trash.unlink()


def _safe_rel(rel: str) -> bool:
    p = Path(rel)
    return not p.is_absolute() and ".." not in p.parts


def default_cache_dir(results_root: str | os.PathLike[str]) -> Path:
    """``$SALESOPS_CACHE_DIR`` when set, else ``<results root>/.cache``."""
    env = os.environ.get(CACHE_DIR_ENV, "").strip()
    return Path(env).expanduser().resolve() if env else (Path(results_root) / ".cache").resolve()


def write_pointer(out_dir: Path, cache: StageCache | None) -> None:
    """Record in a scenario folder which cache its stages use (read back by notebook kernels)."""
    doc = {"cache_dir": str(cache.root) if cache is not None else None}
    atomic_write_text(out_dir / POINTER_FILE, json.dumps(doc))


def read_pointer(out_dir: Path) -> StageCache | None:
    """The cache a scenario folder's pointer names; None without a pointer or with the cache off."""
    path = out_dir / POINTER_FILE
    if not path.is_file():
        return None
    try:
        root = json.loads(path.read_text(encoding="utf-8")).get("cache_dir")
    except (OSError, ValueError, AttributeError):
        log.warning("%s: unreadable; the stages run without the cache", path)
        return None
    return StageCache(Path(root)) if root else None
