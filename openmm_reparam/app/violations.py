"""Structural violations of a protein model by AlphaFold's definitions (its ``find_structural_violations``).

Over the heavy atoms of the 20 standard residues (and their protonation/disulfide variants), without hydrogens
and the terminal OXT (AlphaFold's atom14 representation has neither); other residues (nucleic acids, ligands,
water) are not checked. Values from :mod:`.stereochemistry` (Engh & Huber; AlphaFold's ``residue_constants``);
tolerance factor 12, clash overlap 1.5 Å.

* **between residues**, for each pair of consecutive residues of a chain that is not broken:
  the peptide bond C(i)–N(i+1) (``bond``) off 1.329 Å (1.341 Å before Pro) by more than 12 σ; the cosines of the
  angles CA(i)–C(i)–N(i+1) and C(i)–N(i+1)–CA(i+1) (``angle``) off theirs by more than 12 σ;
* **clash between residues**: two heavy atoms of different residues closer than the sum of their van der Waals
  radii minus 1.5 Å, except the peptide bond C(i)–N(i+1) and a disulfide SG–SG;
* **within a residue**, for every pair of its heavy atoms: a bonded pair (``bond``) or a pair bonded to one
  atom (``angle``, the 1–3 distance the Engh & Huber angle implies) outside mean ± 12 σ; any other pair closer
  than the sum of the radii minus 1.5 Å (``clash``).

**Chain breaks.** AlphaFold knows its gaps from the residue numbering. Here a break is a C(i)–N(i+1) distance
above 2.5 Å: both sides are termini, with no peptide-bond or angle check (a break is not a violation). 2.5 Å
lies between a noisy bonded C–N (1.33 Å plus 0.02 nm Gaussian noise on every coordinate exceeds 2.5 Å with
probability 2.6e-5) and the shortest one-residue gap of the structures in ``/work/shared/data/pdb`` (C(i)–N(i+2)
2.91 Å over 1HLO, 2WXC and 2JOF).

A residue violates when one of its atoms takes part in a violation (a between-residue violation counts for
both residues): AlphaFold's relax releases the restraints on those residues and minimizes again.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np
from openmm import app

from ..core.units import as_positions
from .structure_file import residue_label
from .stereochemistry import (CLASH_OVERLAP_ANGSTROM, COS_C_N_CA, COS_CA_C_N, PEPTIDE_BOND, PEPTIDE_BOND_BEFORE_PRO,
                              TOLERANCE_FACTOR, VDW_RADII_ANGSTROM, distance_bounds, residue_geometry,
                              standard_name)

#: A C(i)-N(i+1) distance above this (Å) is a chain break (see the module docstring).
BREAK_DISTANCE_ANGSTROM = 2.5
_DEFAULT_RADIUS = 1.7
_SKIPPED_ATOMS = ("OXT",)


@dataclass(frozen=True)
class Violation:
    """One violation: ``kind`` clash | bond | angle; ``atoms`` (2, or 3 for a peptide angle); ``value`` (Å, or
    the cosine of a peptide angle) outside [lower, upper]; ``between`` residues or within one."""
    kind: str
    atoms: Tuple[int, ...]
    value: float
    lower: float
    upper: float
    between: bool


@dataclass
class Violations:
    """The violations of one structure, the residues they touch, and the chain breaks found (residue index
    before, after, C-N distance Å)."""
    items: List[Violation] = field(default_factory=list)
    residues: Set[int] = field(default_factory=set)
    breaks: List[Tuple[int, int, float]] = field(default_factory=list)

    def of_kind(self, kind: str) -> List[Violation]:
        return [v for v in self.items if v.kind == kind]

    @property
    def clashes(self) -> List[Violation]:
        return self.of_kind("clash")

    @property
    def bonds(self) -> List[Violation]:
        return self.of_kind("bond")

    @property
    def angles(self) -> List[Violation]:
        return self.of_kind("angle")

    @property
    def count(self) -> int:
        return len(self.items)

    def to_dict(self, topology: app.Topology) -> Dict[str, Any]:
        """JSON-ready counts, the violating residues by label, the worst clash overlap and the chain breaks."""
        residues = list(topology.residues())
        worst = max((v.lower - v.value for v in self.clashes), default=0.0)
        return {"clashes": len(self.clashes), "bond_lengths": len(self.bonds), "bond_angles": len(self.angles),
                "total": self.count, "residues_violating": len(self.residues),
                "violating_residues": [label(residues[i]) for i in sorted(self.residues)],
                "worst_clash_overlap_angstrom": float(worst),
                "chain_breaks": [{"after": label(residues[a]), "before": label(residues[b]), "c_n_angstrom": d}
                                 for a, b, d in self.breaks]}


def find_violations(topology: app.Topology, positions: Any, system: Any = None, *,
                    break_distance: float = BREAK_DISTANCE_ANGSTROM) -> Violations:
    """AlphaFold's structural violations of ``positions`` (nm; see the module docstring). ``system`` is not
    used (the check depends on the structure alone; kept for callers that pass it)."""
    xyz = as_positions(positions) * 10.0  # Å
    residues = checked_residues(topology)
    result = Violations()
    for name, atoms in residues.values():
        result.items += _within_residue(name, atoms, xyz)
    links, result.breaks = peptide_links(topology, xyz, residues, break_distance)
    for before, after in links:
        result.items += _peptide(residues[before], residues[after], xyz)
    result.items += _clashes_between(residues, links, xyz)
    owner = {index: r for r, (_, atoms) in residues.items() for index in atoms.values()}
    result.residues = {owner[i] for v in result.items for i in v.atoms}
    return result


Residues = Dict[int, Tuple[str, Dict[str, int]]]


def checked_residues(topology: app.Topology) -> Residues:
    """{residue index: (standard name, {atom name: atom index})}: the heavy atoms (no OXT) of the residues the
    stereochemistry table knows."""
    residues: Residues = {}
    for residue in topology.residues():
        name = standard_name(residue.name)
        if not residue_geometry(name)[0]:
            continue
        residues[residue.index] = (name, {a.name: a.index for a in residue.atoms()
                                          if a.element is not None and a.element.symbol != "H"
                                          and a.name not in _SKIPPED_ATOMS})
    return residues


def peptide_links(topology: app.Topology, xyz: np.ndarray, residues: Optional[Residues] = None,
                  break_distance: float = BREAK_DISTANCE_ANGSTROM):
    """Consecutive residue pairs of each chain joined by a peptide bond, and the chain breaks (C–N farther than
    ``break_distance`` Å) as (before, after, distance Å); ``xyz`` in Å."""
    residues = checked_residues(topology) if residues is None else residues
    links: List[Tuple[int, int]] = []
    breaks: List[Tuple[int, int, float]] = []
    for chain in topology.chains():
        members = [r.index for r in chain.residues() if r.index in residues]
        for before, after in zip(members, members[1:]):
            c, n = residues[before][1].get("C"), residues[after][1].get("N")
            if c is None or n is None:
                continue
            distance = float(np.linalg.norm(xyz[c] - xyz[n]))
            if distance > break_distance:
                breaks.append((before, after, distance))
            else:
                links.append((before, after))
    return links, breaks


def _radius(atom_name: str) -> float:
    return VDW_RADII_ANGSTROM.get(atom_name[:1], _DEFAULT_RADIUS)


def _within_residue(name: str, atoms: Dict[str, int], xyz: np.ndarray) -> List[Violation]:
    bounds = distance_bounds(name)
    found = []
    for (a, i), (b, j) in itertools.combinations(sorted(atoms.items()), 2):
        distance = float(np.linalg.norm(xyz[i] - xyz[j]))
        default = (_radius(a) + _radius(b) - CLASH_OVERLAP_ANGSTROM, np.inf, "clash")
        lower, upper, kind = bounds.get((a, b), default)
        if distance < lower or distance > upper:
            found.append(Violation(kind, (min(i, j), max(i, j)), distance, lower, float(upper), False))
    return found


def _peptide(first: Tuple[str, Dict[str, int]], second: Tuple[str, Dict[str, int]],
             xyz: np.ndarray) -> List[Violation]:
    """The peptide bond C(i)-N(i+1) and the angles CA(i)-C(i)-N(i+1), C(i)-N(i+1)-CA(i+1) (as cosines)."""
    c, n = first[1]["C"], second[1]["N"]
    mean, sd = PEPTIDE_BOND_BEFORE_PRO if second[0] == "PRO" else PEPTIDE_BOND
    found = []
    length = float(np.linalg.norm(xyz[c] - xyz[n]))
    if abs(length - mean) > TOLERANCE_FACTOR * sd:
        found.append(Violation("bond", (c, n), length, mean - TOLERANCE_FACTOR * sd, mean + TOLERANCE_FACTOR * sd,
                               True))
    for triple, (mean, sd) in (((first[1].get("CA"), c, n), COS_CA_C_N), ((c, n, second[1].get("CA")), COS_C_N_CA)):
        if None in triple:
            continue
        cosine = _cosine(xyz[triple[0]] - xyz[triple[1]], xyz[triple[2]] - xyz[triple[1]])
        if abs(cosine - mean) > TOLERANCE_FACTOR * sd:
            found.append(Violation("angle", triple, cosine, mean - TOLERANCE_FACTOR * sd,
                                   mean + TOLERANCE_FACTOR * sd, True))
    return found


def _cosine(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.dot(u, v) / max(np.linalg.norm(u) * np.linalg.norm(v), 1e-12))


def _clashes_between(residues: Residues, links: List[Tuple[int, int]], xyz: np.ndarray) -> List[Violation]:
    """Heavy atoms of different residues closer than r_i + r_j - 1.5 Å (not a peptide bond, not SG-SG)."""
    from scipy.spatial import cKDTree

    index, owner, names = [], [], []
    for r, (_, atoms) in residues.items():
        for name, i in atoms.items():
            index.append(i)
            owner.append(r)
            names.append(name)
    if len(index) < 2:
        return []
    bonded = {(residues[a][1]["C"], residues[b][1]["N"]) for a, b in links}
    reach = 2 * max(VDW_RADII_ANGSTROM.values()) - CLASH_OVERLAP_ANGSTROM
    found = []
    for p, q in cKDTree(xyz[index]).query_pairs(reach, output_type="ndarray"):
        if owner[p] == owner[q]:
            continue
        i, j = index[p], index[q]
        if (i, j) in bonded or (j, i) in bonded or (names[p] == names[q] == "SG"):
            continue
        limit = _radius(names[p]) + _radius(names[q]) - CLASH_OVERLAP_ANGSTROM
        distance = float(np.linalg.norm(xyz[i] - xyz[j]))
        if distance < limit:
            found.append(Violation("clash", (min(i, j), max(i, j)), distance, limit, float("inf"), True))
    return sorted(found, key=lambda v: v.atoms)


label = residue_label  # ``HIS A 17``: name, chain id, number and insertion code


__all__ = ["Violation", "Violations", "find_violations", "checked_residues", "peptide_links", "label",
           "BREAK_DISTANCE_ANGSTROM", "VDW_RADII_ANGSTROM", "CLASH_OVERLAP_ANGSTROM", "TOLERANCE_FACTOR"]
