"""Batch inputs: expand files, directories and glob patterns into structure files, and give each a unique
output name.

A directory contributes its PDB and PDBx/mmCIF files, plain or gzip-compressed (not recursively); a pattern with ``*``, ``?`` or ``[``
contributes its matches (``**`` recurses). A path that does not exist, a pattern that matches nothing and a
directory without structures are usage errors, found before any work. Names are the file names without
extension; when two inputs share one (AlphaFold writes ``ranked_0.pdb`` into one directory per target), the
directories that tell them apart are prefixed: ``T1__ranked_0``, ``T2__ranked_0``.
"""
from __future__ import annotations

import glob
import os
from typing import Dict, Iterable, List, Sequence, Union

STRUCTURE_EXTENSIONS = (".pdb", ".ent", ".cif", ".mmcif", ".pdbx")
#: What a directory contributes: the structure extensions, plain or with ``.gz``.
FILE_EXTENSIONS = STRUCTURE_EXTENSIONS + tuple(extension + ".gz" for extension in STRUCTURE_EXTENSIONS)
PathLike = Union[str, "os.PathLike[str]"]


class InputError(ValueError):
    """An input argument names nothing usable (a usage error)."""


def expand_inputs(arguments: Union[PathLike, Iterable[PathLike]]) -> List[str]:
    """The structure files named by ``arguments`` (files, directories, glob patterns), each once, in the order
    given (sorted within a directory or a pattern)."""
    if isinstance(arguments, (str, os.PathLike)):
        arguments = [arguments]
    found: List[str] = []
    for argument in arguments:
        argument = os.fspath(argument)
        if glob.has_magic(argument):
            matches = sorted(p for p in glob.glob(argument, recursive=True) if os.path.isfile(p))
            if not matches:
                raise InputError(f"no file matches {argument!r}")
            found += matches
        elif os.path.isdir(argument):
            matches = sorted(os.path.join(argument, n) for n in os.listdir(argument)
                             if n.lower().endswith(FILE_EXTENSIONS)
                             and os.path.isfile(os.path.join(argument, n)))
            if not matches:
                raise InputError(f"directory {argument!r} holds no {'/'.join(STRUCTURE_EXTENSIONS)} file "
                                 "(plain or .gz)")
            found += matches
        elif os.path.exists(argument):
            found.append(argument)
        else:
            raise InputError(f"input {argument!r} does not exist")
    unique: Dict[str, str] = {}
    for path in found:
        unique.setdefault(os.path.realpath(path), path)
    if not unique:
        raise InputError("no input structures")
    return list(unique.values())


def output_names(paths: Sequence[str], reserved: Sequence[str] = ("summary",)) -> List[str]:
    """A distinct, file-system-safe name (no extension) for each input path; none of them in ``reserved``
    (the batch's own ``summary.json``), which get ``_input`` appended."""
    parts = [os.path.normpath(os.path.abspath(p)).split(os.sep) for p in paths]
    names = [_stem(p[-1]) for p in parts]
    depth = 1
    while len(set(names)) < len(names):
        depth += 1
        clashes = {n for n in names if names.count(n) > 1}
        names = ["__".join(p[-depth:-1] + [_stem(p[-1])]) if n in clashes else n for n, p in zip(names, parts)]
        if depth > max(len(p) for p in parts):  # same directory, same stem (x.pdb and x.cif): keep the extension
            names = [n if names.count(n) == 1 else p[-1].replace(".", "_") for n, p in zip(names, parts)]
            break
    return [f"{name}_input" if name in reserved else name for name in names]


def _stem(filename: str) -> str:
    if filename.lower().endswith(".gz"):
        filename = filename[:-3]
    stem, extension = os.path.splitext(filename)
    return stem if extension.lower() in STRUCTURE_EXTENSIONS else filename.replace(".", "_")


__all__ = ["expand_inputs", "output_names", "InputError", "STRUCTURE_EXTENSIONS", "FILE_EXTENSIONS"]
