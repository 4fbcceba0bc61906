"""Atomic output files: write to a temporary file in the target's directory, then ``os.replace`` it.

A run that fails half-way therefore never leaves a partial or truncated output behind, and an existing file is
only replaced by a complete new one.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator, Union

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
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    _, extension = os.path.splitext(base)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{extension}", dir=directory)
    except OSError as error:
        raise OutputError(f"cannot write {path!r}: {error.strerror or error}") from None
    os.close(fd)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
