"""Read one model of a structure file for preparation: PDB or PDBx/mmCIF, plain or gzip-compressed.

Every problem with the file becomes a :class:`PreparationError` whose message is one line naming what is
wrong (and, for a PDB record, its line number), never a parser's internal error: a missing or empty file, a
binary file, a record too short or with unreadable coordinates, a model number the file does not have, a
non-finite coordinate or an atom absurdly far from all others (:mod:`openmm_reparam.core.validation`).
"""
from __future__ import annotations

import gzip
import io
import os
from typing import Any, Optional, Tuple, Union

import openmm
from openmm import app

from ..core.errors import InvalidPositionsError
from ..core.units import as_positions
from ..core.validation import check_positions

PathLike = Union[str, "os.PathLike[str]"]
PDB_EXTENSIONS = (".pdb", ".ent")
PDBX_EXTENSIONS = (".cif", ".mmcif", ".pdbx")
GZIP_SUFFIX = ".gz"
_GZIP_MAGIC = b"\x1f\x8b"
_ATOM_RECORDS = ("ATOM  ", "HETATM")


class PreparationError(ValueError):
    """The input structure or a preparation setting cannot be used (a user error, not a bug)."""


def without_gzip_suffix(path: PathLike) -> str:
    """``x.pdb.gz`` -> ``x.pdb``; other names unchanged."""
    path = os.fspath(path)
    return path[:-len(GZIP_SUFFIX)] if path.lower().endswith(GZIP_SUFFIX) else path


def structure_format(path: PathLike) -> str:
    """``"pdb"`` or ``"pdbx"`` from a file name's extension (a ``.gz`` suffix is looked through);
    PreparationError for anything else."""
    lower = without_gzip_suffix(path).lower()
    if lower.endswith(PDBX_EXTENSIONS):
        return "pdbx"
    if lower.endswith(PDB_EXTENSIONS):
        return "pdb"
    raise PreparationError(f"cannot tell the format of {os.fspath(path)!r}: use a .pdb or .cif extension")


def read_text(path: PathLike) -> str:
    """The text of ``path`` (gzip-compressed files are decompressed, whatever their name)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise PreparationError(f"input file {path!r} does not exist")
    if os.path.isdir(path):
        raise PreparationError(f"input {path!r} is a directory, not a structure file")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if data.startswith(_GZIP_MAGIC):
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise PreparationError(f"cannot read {path!r}: {getattr(error, 'strerror', None) or error}") from None
    if b"\x00" in data:
        raise PreparationError(f"{path!r} is not a text file (it holds NUL bytes): not a PDB or PDBx/mmCIF file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # structure files are ASCII; a stray byte in a REMARK is no reason to refuse
        text = data.decode("latin-1")
    if not text.strip():
        raise PreparationError(f"input file {path!r} is empty")
    return text


def is_pdbx(path: PathLike, text: str) -> bool:
    """Whether ``text`` (read from ``path``) is PDBx/mmCIF: by extension, else by its ``data_`` header."""
    return without_gzip_suffix(path).lower().endswith(PDBX_EXTENSIONS) or text.lstrip().startswith("data_")


def select_pdb_model(text: str, model: int, path: str) -> Tuple[str, int]:
    """The PDB text with only the ``model``-th MODEL block (records outside MODEL blocks are kept), and the
    number of models."""
    lines = text.splitlines(keepends=True)
    n_models = sum(1 for line in lines if line.startswith("MODEL"))
    if n_models == 0:
        if model != 1:
            raise PreparationError(f"{path!r} has 1 model, model {model} was asked for")
        return text, 1
    if model > n_models:
        raise PreparationError(f"{path!r} has {n_models} models, model {model} was asked for")
    kept, ordinal, inside = [], 0, False
    for line in lines:
        if line.startswith("MODEL"):
            ordinal += 1
            inside = True
            continue
        if line.startswith("ENDMDL"):
            inside = False
            continue
        if not inside or ordinal == model:
            kept.append(line)
    return "".join(kept), n_models


def check_pdb_records(text: str, path: str) -> None:
    """PreparationError naming the first ATOM/HETATM record OpenMM's PDB reader cannot read (too short,
    unreadable coordinates, a misaligned residue name), or the absence of any."""
    found = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith(_ATOM_RECORDS):
            continue
        found = True
        where = f"{path!r} line {number}"
        if len(line) < 54:
            raise PreparationError(f"{where}: an {line[:6].strip()} record of {len(line)} columns; its coordinates "
                                   "take columns 31-54")
        try:
            [float(line[start:start + 8]) for start in (30, 38, 46)]
        except ValueError:
            raise PreparationError(f"{where}: unreadable coordinates {line[30:54].strip()!r} (columns 31-54 hold "
                                   "three numbers of 8 characters)") from None
        if line[20] != " " and len(line[17:20].strip()) != 3:
            raise PreparationError(f"{where}: misaligned residue name {line[17:21]!r} (columns 18-20)")
    if not found:
        raise PreparationError(f"{path!r} has no ATOM or HETATM records: not a PDB file")


def load_fixer(path: PathLike, model: int = 1, platform: Optional[openmm.Platform] = None):
    """A PDBFixer holding model ``model`` (1-based) of ``path``, and the number of models in the file; its
    coordinates checked (:func:`check_coordinates`)."""
    from pdbfixer import PDBFixer  # imported here: pdbfixer is an optional ("pdb") dependency

    path = os.fspath(path)
    if int(model) < 1:
        raise PreparationError(f"model numbers start at 1, got {model}")
    text = read_text(path)
    try:
        if is_pdbx(path, text):
            if "_atom_site." not in text:
                raise PreparationError(f"{path!r} has no _atom_site records: not a PDBx/mmCIF structure")
            fixer = PDBFixer(pdbxfile=io.StringIO(text), platform=platform)
            n_models = app.PDBxFile(io.StringIO(text)).getNumFrames()
            if model > n_models:
                raise PreparationError(f"{path!r} has {n_models} model(s), model {model} was asked for")
            if model > 1:
                fixer.positions = app.PDBxFile(io.StringIO(text)).getPositions(frame=model - 1)
        else:
            selected, n_models = select_pdb_model(text, model, path)
            check_pdb_records(selected, path)
            fixer = PDBFixer(pdbfile=io.StringIO(selected), platform=platform)
    except PreparationError:
        raise
    except Exception as error:  # any parser failure means the file is not a usable structure
        message = " ".join(str(error).split()) or type(error).__name__
        raise PreparationError(f"cannot read a structure from {path!r}: {message}") from None
    if fixer.topology.getNumAtoms() == 0:
        raise PreparationError(f"{path!r} holds no atoms (model {model})")
    check_coordinates(fixer.topology, fixer.positions, path)
    check_residues(fixer.topology, path)
    return fixer, n_models


def check_coordinates(topology: app.Topology, positions: Any, path: str) -> None:
    """PreparationError naming the first atom with a non-finite coordinate or absurdly far from all others."""
    atoms = list(topology.atoms())
    try:
        check_positions(as_positions(positions), describe=lambda i: f"atom {atom_label(atoms[i])}")
    except InvalidPositionsError as error:
        raise PreparationError(f"{path!r}: {error}") from None


def check_residues(topology: app.Topology, path: str) -> None:
    """PreparationError for a polymer residue without a single heavy atom (typically a hydrogen record whose
    residue name, number or chain was mistyped): PDBFixer would build the whole residue from nothing, on top of
    its neighbours, and its relaxation of the new atoms may then never finish."""
    from pdbfixer.pdbfixer import dnaResidues, proteinResidues, rnaResidues
    polymer = set(proteinResidues) | set(dnaResidues) | set(rnaResidues)
    for residue in topology.residues():
        if residue.name in polymer and all(a.element is None or a.element.symbol == "H" for a in residue.atoms()):
            names = " ".join(a.name for a in residue.atoms())
            raise PreparationError(f"{path!r}: residue {residue_label(residue)} has no heavy atom (only {names}): "
                                   "a mistyped residue name, number or chain id?")


def residue_label(residue: app.Residue) -> str:
    """``TYR A 1``: the residue's name, chain id, number and insertion code."""
    return f"{residue.name} {residue.chain.id} {residue.id}{residue.insertionCode or ''}".strip()


def atom_label(atom: app.topology.Atom) -> str:
    """``CB of TYR A 1``: the atom's name and its residue's name, chain id, number and insertion code."""
    return f"{atom.name} of {residue_label(atom.residue)}"


__all__ = ["PreparationError", "read_text", "load_fixer", "structure_format", "select_pdb_model",
           "check_pdb_records", "check_coordinates", "check_residues", "atom_label", "residue_label", "is_pdbx",
           "without_gzip_suffix", "PDB_EXTENSIONS", "PDBX_EXTENSIONS", "GZIP_SUFFIX"]
