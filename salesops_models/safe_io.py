"""Safe file input and output: one place for every file the workbench reads from users or writes as a result.

Four rules, each kept here once:

- **Paths named in data files** (a scenario's ``extends:``, ``data.path``, ``data.mapping`` and plan
  files; a mapping's ``tables.*.file``) resolve against the folder they belong to and must stay
  inside it after ``Path.resolve()``, so ``../..``, absolute paths and symlinks that leave the
  folder are refused (:class:`PathRule`). The user widens the rule explicitly, with
  ``--allow-dir DIR`` on the command line or ``SALESOPS_ALLOW_DIRS`` (folders separated by
  ``os.pathsep``); the CLI exports the flag to that variable so Dask workers and notebook kernels
  apply the same grant.
- **Reading** (:func:`read_bytes`, :func:`read_text`): a regular file only (not a folder, not a
  device such as ``/dev/zero``), at most a size cap, checked *before* reading, and decoded
  strictly, with an error naming the file, the line of the first bad byte and the fix.
- **YAML** (:func:`load_yaml`): PyYAML's safe loader (no code), with aliases refused and a node
  budget, because ``safe_load`` expands aliases: a "billion laughs" document is small on disk but
  blows up anything that walks it (FIELD-NOTES §6).
- **Writing results** (:func:`atomic_write_text`, :func:`atomic_write_bytes`,
  :func:`atomic_write_parquet`): a temporary file in the same folder, flushed, then
  ``os.replace``, so a reader never sees half a file after a kill.
"""

from __future__ import annotations

import contextlib
import os
import reprlib
import secrets
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from salesops_models.errors import InputFileError, SalesopsError

ALLOW_DIRS_ENV = "SALESOPS_ALLOW_DIRS"
ALLOW_FLAG = "--allow-dir"

# Caps on what is read before anything is parsed. A scenario is a few KB; a plan or a mapping too.
MAX_YAML_BYTES = 1 << 20  # 1 MiB [bytes]
MAX_YAML_NODES = 20_000  # scalars, sequences and mappings in one YAML document
MAX_TABLE_BYTES_ENV = "SALESOPS_MAX_TABLE_MB"
DEFAULT_MAX_TABLE_MB = 1024  # [MiB]; a CSV parsed as text takes several times its size in memory

ErrorFactory = Callable[[str], Exception]

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80
_short.maxlist = _short.maxdict = _short.maxtuple = _short.maxset = 6
_short.maxlevel = 2


def short_repr(value: object) -> str:
    """A bounded ``repr`` for error messages: never prints a huge or deeply nested input in full."""
    return _short.repr(value)


def max_table_bytes() -> int:
    """Largest data table file read [bytes]: ``SALESOPS_MAX_TABLE_MB`` (MiB) or 1 GiB."""
    raw = os.environ.get(MAX_TABLE_BYTES_ENV, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_MAX_TABLE_MB
    except ValueError:
        raise SalesopsError(
            f"{MAX_TABLE_BYTES_ENV}={raw!r}: must be a number of megabytes, e.g. 2048."
        ) from None
    return int(mb * (1 << 20))


# ------------------------------------------------------------------------------------------------
# the path rule
# ------------------------------------------------------------------------------------------------


def is_path_reference(ref: str) -> bool:
    """True when a mapping or plan reference is a file path (ends .yaml/.yml or names a folder), not the
    name of a shipped file such as ``maven`` or ``ae_standard``."""
    return ref.lower().endswith((".yaml", ".yml")) or "/" in ref or "\\" in ref


def _dirs_from_env() -> tuple[Path, ...]:
    raw = os.environ.get(ALLOW_DIRS_ENV, "")
    return tuple(Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip())


@dataclass(frozen=True)
class PathRule:
    """Where files named inside data files may be.

    Attributes
    ----------
    allowed
        Folders granted by the user besides each file's own folder (``--allow-dir``).
    anywhere
        True only for files the workbench wrote itself after checking them (a batch's
        ``scenario.resolved.yaml`` read back by its worker).
    """

    allowed: tuple[Path, ...] = ()
    anywhere: bool = False

    @classmethod
    def from_env(cls, extra: Sequence[str | os.PathLike[str]] = ()) -> PathRule:
        """The user's grants: ``extra`` folders plus those in ``SALESOPS_ALLOW_DIRS``."""
        dirs = tuple(Path(p).expanduser().resolve() for p in extra) + _dirs_from_env()
        return cls(allowed=dirs)

    @classmethod
    def trusted(cls) -> PathRule:
        """No folder check: for files this package wrote after checking them."""
        return cls(anywhere=True)

    def resolve(
        self,
        ref: str | os.PathLike[str],
        folder: str | os.PathLike[str],
        named_in: str | os.PathLike[str],
        key: str,
        folder_role: str = "the folder of the file that names it",
        error: ErrorFactory = InputFileError,
    ) -> Path:
        """Resolve ``ref`` (relative to ``folder``) and check that it stays inside ``folder``.

        Parameters
        ----------
        ref
            The path as written in the data file.
        folder
            The folder it belongs to and is relative to.
        named_in
            The file that names it (for the message).
        key
            The key that names it, e.g. ``data.mapping`` or ``tables.opportunities.file``.
        folder_role
            What ``folder`` is, in words, for the message.
        error
            Exception factory (one message argument) raised when the rule is broken.

        Returns
        -------
        pathlib.Path
            The absolute, symlink-free path.
        """
        base = Path(folder).expanduser().resolve()
        target = (base / Path(ref).expanduser()).resolve()
        if self.anywhere or target.is_relative_to(base):
            return target
        if any(target.is_relative_to(d) for d in self.allowed):
            return target
        raise error(
            f"{named_in}: {key} {str(ref)!r} resolves to {target}, outside {folder_role} ({base}). "
            "Rule: a file named in a scenario or mapping must stay inside that folder (a symlink that "
            f"leaves it counts as leaving). Move the file inside {base}, or allow its folder with "
            f"{ALLOW_FLAG} {target.parent} (or {ALLOW_DIRS_ENV})."
        )


# ------------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------------


def read_bytes(
    path: str | os.PathLike[str], max_bytes: int, what: str = "file", error: ErrorFactory = InputFileError
) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, checked before reading.

    A folder, a device (``/dev/zero``), a pipe or a file over the cap raise ``error`` with a
    one-line message naming the file and the fix.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise error(f"{p}: {what} not found; check the path.") from None
    except OSError as exc:
        raise error(f"{p}: cannot read this {what} ({exc.strerror}).") from None
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{p}: is a folder, not a {what}; name the file itself.")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: not a regular file (a device or a pipe); give a {what} saved on disk.")
    if st.st_size > max_bytes:
        raise error(
            f"{p}: {st.st_size:,} bytes, more than the {max_bytes:,} a {what} may have; "
            "check that this is the right file."
        )
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise error(f"{p}: cannot read this {what} ({exc.strerror}).") from None
    if len(data) > max_bytes:
        raise error(f"{p}: more than the {max_bytes:,} bytes a {what} may have.")
    return data


def decode_text(
    data: bytes,
    path: str | os.PathLike[str],
    encoding: str = "utf-8",
    what: str = "file",
    fix: str = "save it as UTF-8",
    error: ErrorFactory = InputFileError,
) -> str:
    """Decode ``data`` strictly (a UTF-8 byte-order mark is dropped); name the line of a bad byte."""
    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(enc)
    except LookupError:
        raise error(f"{path}: unknown encoding {encoding!r}; use a Python codec name such as cp1252.") from None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{path}: line {line}: byte {data[exc.start : exc.start + 1]!r} is not valid {encoding} "
            f"(this {what} is in another encoding); {fix}."
        ) from None


def read_text(
    path: str | os.PathLike[str],
    max_bytes: int = MAX_YAML_BYTES,
    what: str = "file",
    encoding: str = "utf-8",
    fix: str = "save it as UTF-8",
    error: ErrorFactory = InputFileError,
) -> str:
    """:func:`read_bytes` then :func:`decode_text`."""
    return decode_text(read_bytes(path, max_bytes, what, error), path, encoding, what, fix, error)


# ------------------------------------------------------------------------------------------------
# YAML
# ------------------------------------------------------------------------------------------------


class _BudgetLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases and stops after ``MAX_YAML_NODES`` nodes."""

    nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: ANN401 (PyYAML's signature)
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not allowed in workbench files; write the value out in full",
                event.start_mark,
            )
        self.nodes += 1
        if self.nodes > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None, None, f"more than {MAX_YAML_NODES:,} values; this is not a settings file", None
            )
        return super().compose_node(parent, index)


def load_yaml(
    path: str | os.PathLike[str],
    what: str = "YAML file",
    error: ErrorFactory = InputFileError,
    max_bytes: int = MAX_YAML_BYTES,
) -> Any:
    """Read one YAML document safely: size cap, strict UTF-8, no code, no aliases, a node budget.

    Returns the document (None for an empty file). Every problem raises ``error`` with a message
    naming the file and, for syntax errors, the line.
    """
    text = read_text(path, max_bytes, what, error=error)
    loader = _BudgetLoader(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}:{where} not valid YAML: {problem}.") from None
    finally:
        loader.dispose()


# ------------------------------------------------------------------------------------------------
# atomic writes
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success it replaces ``path`` in one step.

    The temporary name starts with a dot and ends ``.tmp``, so readers that look for ``*.parquet``
    or ``metrics.json`` never pick it up; it is removed when the writer raises. With ``durable``
    the file is flushed to disk before the rename; without, the rename still makes it appear whole
    to every reader (a killed writer leaves the old file or none), only a power loss may lose it:
    for copies of files kept durably elsewhere (a verified stage-cache entry).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique name the writer creates with the usual mode (mkstemp's 0600 would hide results from
    # the user's group, unlike a plain write).
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb") as fh:  # flush to disk before the rename makes it visible
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, then ``os.replace``)."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(
    path: str | os.PathLike[str], text: str, encoding: str = "utf-8", durable: bool = True
) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding), durable=durable)


def atomic_write_parquet(df: Any, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """``df.to_parquet(path, **kwargs)``, atomically."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, **kwargs)
    return Path(path)
