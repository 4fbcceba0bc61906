"""Atomic output files: write to a temporary file in the target's directory, then ``os.replace`` it.

A run that fails half-way therefore never leaves a partial or truncated output behind, and an existing file is
only replaced by a complete new one. The temporary file exists only while it is written (its name is reserved,
not created, up front), so a process killed before it writes leaves nothing; :func:`remove_temporaries` clears
what a process killed while writing left.
"""
from __future__ import annotations

import glob
import os
import tempfile
import uuid
from contextlib import contextmanager
from typing import Iterator, List, Union

PathLike = Union[str, "os.PathLike[str]"]


class OutputError(OSError):
    """An output path cannot be written (a user error: missing directory, no permission, a directory...)."""


def check_writable(path: PathLike) -> None:
    """Fail early, before any work, when ``path`` cannot be created atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"cannot write {path!r}: it is a directory")
    if not os.path.isdir(directory):
        raise OutputError(f"cannot write {path!r}: directory {directory!r} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=".openmm-reparam-probe-", dir=directory)
    except OSError as error:
        raise OutputError(f"cannot write {path!r}: {error.strerror or error}") from None
    os.close(fd)
    os.remove(probe)


@contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """Yield a temporary file name next to ``path``; on success it becomes ``path``, on error it is removed.

    The temporary name keeps the extension of ``path`` (some writers choose the format from it).
    """
    path = os.fspath(path)
    temporary = _temporary_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _temporary_name(path: str) -> str:
    """``DIR/.NAME.<random>.tmp.EXT`` for ``DIR/NAME.EXT``: unique, and not created."""
    directory, base = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp{os.path.splitext(base)[1]}")


def remove_temporaries(path: PathLike) -> List[str]:
    """Remove the temporary files :func:`atomic_path` left next to ``path`` (a writer killed while writing);
    returns their names. Call only when no writer of ``path`` is running."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    pattern = os.path.join(glob.escape(directory), f".{glob.escape(base)}.*.tmp{os.path.splitext(base)[1]}")
    removed = []
    for leftover in glob.glob(pattern):
        try:
            os.remove(leftover)
            removed.append(leftover)
        except OSError:
            pass
    return removed
