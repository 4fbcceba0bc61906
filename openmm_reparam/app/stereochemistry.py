"""Ideal protein stereochemistry (Engh & Huber), as AlphaFold measures structural violations against it.

Values: Engh & Huber, *Acta Cryst.* A47, 392 (1991), the table AlphaFold ships as
``alphafold/common/stereo_chemical_props.txt`` (bond lengths Å and bond angles degrees, each with its standard
deviation), and the between-residue values of AlphaFold's ``residue_constants.py``: the peptide bond C–N
1.329 ± 0.014 Å (1.341 ± 0.016 Å before a proline), and the cosines of the angles CA–C–N −0.4473 ± 0.0311
and C–N–CA −0.5203 ± 0.0353; van der Waals radii C 1.7, N 1.55, O 1.52, S 1.8 Å.

A bond angle a–b–c is checked, as AlphaFold does within a residue, as the 1–3 distance a–c it implies (law of
cosines) with the standard deviation propagated from those of the angle and of the two bonds.
"""
from __future__ import annotations

import functools
import math
from typing import Dict, Tuple

#: AlphaFold's ``violation_tolerance_factor``: a violation is a deviation of more than 12 standard deviations.
TOLERANCE_FACTOR = 12.0
#: AlphaFold's ``clash_overlap_tolerance`` (Å): atoms clash closer than the sum of their radii minus this.
CLASH_OVERLAP_ANGSTROM = 1.5
VDW_RADII_ANGSTROM = {"C": 1.7, "N": 1.55, "O": 1.52, "S": 1.8}

PEPTIDE_BOND = (1.329, 0.014)             # C(i)-N(i+1), Å
PEPTIDE_BOND_BEFORE_PRO = (1.341, 0.016)  # C(i)-N(i+1) when residue i+1 is a proline
COS_CA_C_N = (-0.4473, 0.0311)            # cosine of CA(i)-C(i)-N(i+1)
COS_C_N_CA = (-0.5203, 0.0353)            # cosine of C(i)-N(i+1)-CA(i+1)

#: The backbone of every residue but GLY and PRO: bonds (Å) and angles (degrees), mean and standard deviation.
_BACKBONE = "N-CA 1.459 0.020, CA-C 1.525 0.026, C-O 1.229 0.019; N-CA-C 111.0 2.7, CA-C-O 120.1 2.1"
_CB = "N-CA-CB 110.6 1.8, CB-CA-C 110.4 2.0"  # the CB angles most residues share

#: Per residue: ``bonds; angles`` (``+BB`` the backbone above, ``+CB`` the shared CB angles).
_TABLE = {
    "ALA": "+BB CA-CB 1.520 0.021; N-CA-CB 110.1 1.4, CB-CA-C 110.1 1.5",
    "ARG": "+BB CA-CB 1.535 0.022, CB-CG 1.521 0.027, CG-CD 1.515 0.025, CD-NE 1.460 0.017, NE-CZ 1.326 0.013, "
           "CZ-NH1 1.326 0.013, CZ-NH2 1.326 0.013; +CB CA-CB-CG 113.4 2.2, CB-CG-CD 111.6 2.6, "
           "CG-CD-NE 111.8 2.1, CD-NE-CZ 123.6 1.4, NE-CZ-NH1 120.3 0.5, NE-CZ-NH2 120.3 0.5, NH1-CZ-NH2 119.4 1.1",
    "ASN": "+BB CA-CB 1.527 0.026, CB-CG 1.506 0.023, CG-OD1 1.235 0.022, CG-ND2 1.324 0.025; +CB "
           "CA-CB-CG 113.4 2.2, CB-CG-ND2 116.7 2.4, CB-CG-OD1 121.6 2.0, ND2-CG-OD1 121.9 2.3",
    "ASP": "+BB CA-CB 1.535 0.022, CB-CG 1.513 0.021, CG-OD1 1.249 0.023, CG-OD2 1.249 0.023; +CB "
           "CA-CB-CG 113.4 2.2, CB-CG-OD1 118.3 0.9, CB-CG-OD2 118.3 0.9, OD1-CG-OD2 123.3 1.9",
    "CYS": "+BB CA-CB 1.526 0.013, CB-SG 1.812 0.016; N-CA-CB 110.8 1.5, CB-CA-C 111.5 1.2, CA-CB-SG 114.2 1.1",
    "GLU": "+BB CA-CB 1.535 0.022, CB-CG 1.517 0.019, CG-CD 1.515 0.015, CD-OE1 1.252 0.011, CD-OE2 1.252 0.011; "
           "+CB CA-CB-CG 113.4 2.2, CB-CG-CD 114.2 2.7, CG-CD-OE1 118.3 2.0, CG-CD-OE2 118.3 2.0, "
           "OE1-CD-OE2 123.3 1.2",
    "GLN": "+BB CA-CB 1.535 0.022, CB-CG 1.521 0.027, CG-CD 1.506 0.023, CD-OE1 1.235 0.022, CD-NE2 1.324 0.025; "
           "+CB CA-CB-CG 113.4 2.2, CB-CG-CD 111.6 2.6, CG-CD-OE1 121.6 2.0, CG-CD-NE2 116.7 2.4, "
           "OE1-CD-NE2 121.9 2.3",
    "GLY": "N-CA 1.456 0.015, CA-C 1.514 0.016, C-O 1.232 0.016; N-CA-C 113.1 2.5, CA-C-O 120.6 1.8",
    "HIS": "+BB CA-CB 1.535 0.022, CB-CG 1.492 0.016, CG-ND1 1.369 0.015, CG-CD2 1.353 0.017, "
           "ND1-CE1 1.343 0.025, CD2-NE2 1.415 0.021, CE1-NE2 1.322 0.023; +CB CA-CB-CG 113.6 1.7, "
           "CB-CG-ND1 123.2 2.5, CB-CG-CD2 130.8 3.1, CG-ND1-CE1 108.2 1.4, ND1-CE1-NE2 109.9 2.2, "
           "CE1-NE2-CD2 106.6 2.5, NE2-CD2-CG 109.2 1.9, CD2-CG-ND1 106.0 1.4",
    "ILE": "+BB CA-CB 1.544 0.023, CB-CG1 1.536 0.028, CB-CG2 1.524 0.031, CG1-CD1 1.500 0.069; "
           "N-CA-CB 110.8 2.3, CB-CA-C 111.6 2.0, CA-CB-CG1 111.0 1.9, CB-CG1-CD1 113.9 2.8, "
           "CA-CB-CG2 110.9 2.0, CG1-CB-CG2 111.4 2.2",
    "LEU": "+BB CA-CB 1.533 0.023, CB-CG 1.521 0.029, CG-CD1 1.514 0.037, CG-CD2 1.514 0.037; "
           "N-CA-CB 110.4 2.0, CB-CA-C 110.2 1.9, CA-CB-CG 115.3 2.3, CB-CG-CD1 111.0 1.7, "
           "CB-CG-CD2 111.0 1.7, CD1-CG-CD2 110.5 3.0",
    "LYS": "+BB CA-CB 1.535 0.022, CB-CG 1.521 0.027, CG-CD 1.520 0.034, CD-CE 1.508 0.025, CE-NZ 1.486 0.025; "
           "+CB CA-CB-CG 113.4 2.2, CB-CG-CD 111.6 2.6, CG-CD-CE 111.9 3.0, CD-CE-NZ 111.7 2.3",
    "MET": "+BB CA-CB 1.535 0.022, CB-CG 1.509 0.032, CG-SD 1.807 0.026, SD-CE 1.774 0.056; +CB "
           "CA-CB-CG 113.3 1.7, CB-CG-SD 112.4 3.0, CG-SD-CE 100.2 1.6",
    "PHE": "+BB CA-CB 1.535 0.022, CB-CG 1.509 0.017, CG-CD1 1.383 0.015, CG-CD2 1.383 0.015, "
           "CD1-CE1 1.388 0.020, CD2-CE2 1.388 0.020, CE1-CZ 1.369 0.019, CE2-CZ 1.369 0.019; +CB "
           "CA-CB-CG 113.9 2.4, CB-CG-CD1 120.8 0.7, CB-CG-CD2 120.8 0.7, CD1-CG-CD2 118.3 1.3, "
           "CG-CD1-CE1 120.8 1.1, CG-CD2-CE2 120.8 1.1, CD1-CE1-CZ 120.1 1.2, CD2-CE2-CZ 120.1 1.2, "
           "CE1-CZ-CE2 120.0 1.8",
    "PRO": "N-CA 1.468 0.017, CA-C 1.524 0.020, C-O 1.228 0.020, CA-CB 1.531 0.020, CB-CG 1.495 0.050, "
           "CG-CD 1.502 0.033, CD-N 1.474 0.014; N-CA-C 112.1 2.6, CA-C-O 120.2 2.4, N-CA-CB 103.3 1.2, "
           "CB-CA-C 111.7 2.1, CA-CB-CG 104.8 1.9, CB-CG-CD 106.5 3.9, CG-CD-N 103.2 1.5, CA-N-CD 111.7 1.4",
    "SER": "+BB CA-CB 1.525 0.015, CB-OG 1.418 0.013; N-CA-CB 110.5 1.5, CB-CA-C 110.1 1.9, CA-CB-OG 111.2 2.7",
    "THR": "+BB CA-CB 1.529 0.026, CB-OG1 1.428 0.020, CB-CG2 1.519 0.033; N-CA-CB 110.3 1.9, "
           "CB-CA-C 111.6 2.7, CA-CB-OG1 109.0 2.1, CA-CB-CG2 112.4 1.4, OG1-CB-CG2 110.0 2.3",
    "TRP": "+BB CA-CB 1.535 0.022, CB-CG 1.498 0.018, CG-CD1 1.363 0.014, CG-CD2 1.432 0.017, "
           "CD1-NE1 1.375 0.017, NE1-CE2 1.371 0.013, CD2-CE2 1.409 0.012, CD2-CE3 1.399 0.015, "
           "CE2-CZ2 1.393 0.017, CE3-CZ3 1.380 0.017, CZ2-CH2 1.369 0.019, CZ3-CH2 1.396 0.016; +CB "
           "CA-CB-CG 113.7 1.9, CB-CG-CD1 127.0 1.3, CB-CG-CD2 126.6 1.3, CD1-CG-CD2 106.3 0.8, "
           "CG-CD1-NE1 110.1 1.0, CD1-NE1-CE2 109.0 0.9, NE1-CE2-CD2 107.3 1.0, CE2-CD2-CG 107.3 0.8, "
           "CG-CD2-CE3 133.9 0.9, NE1-CE2-CZ2 130.4 1.1, CE3-CD2-CE2 118.7 1.2, CD2-CE2-CZ2 122.3 1.2, "
           "CE2-CZ2-CH2 117.4 1.0, CZ2-CH2-CZ3 121.6 1.2, CH2-CZ3-CE3 121.2 1.1, CZ3-CE3-CD2 118.8 1.3",
    "TYR": "+BB CA-CB 1.535 0.022, CB-CG 1.512 0.015, CG-CD1 1.387 0.013, CG-CD2 1.387 0.013, "
           "CD1-CE1 1.389 0.015, CD2-CE2 1.389 0.015, CE1-CZ 1.381 0.013, CE2-CZ 1.381 0.013, CZ-OH 1.374 0.017; "
           "+CB CA-CB-CG 113.4 1.9, CB-CG-CD1 121.0 0.6, CB-CG-CD2 121.0 0.6, CD1-CG-CD2 117.9 1.1, "
           "CG-CD1-CE1 121.3 0.8, CG-CD2-CE2 121.3 0.8, CD1-CE1-CZ 119.8 0.9, CD2-CE2-CZ 119.8 0.9, "
           "CE1-CZ-CE2 119.8 1.6, CE1-CZ-OH 120.1 2.7, CE2-CZ-OH 120.1 2.7",
    "VAL": "+BB CA-CB 1.543 0.021, CB-CG1 1.524 0.021, CB-CG2 1.524 0.021; N-CA-CB 111.5 2.2, CB-CA-C 111.4 1.9, "
           "CA-CB-CG1 110.9 1.5, CA-CB-CG2 110.9 1.5, CG1-CB-CG2 110.9 1.6",
}

#: Force-field names of protonation and disulfide variants, as the residue they are.
ALIASES = {"HID": "HIS", "HIE": "HIS", "HIP": "HIS", "HSD": "HIS", "HSE": "HIS", "HSP": "HIS", "CYX": "CYS",
           "CYM": "CYS", "ASH": "ASP", "GLH": "GLU", "LYN": "LYS"}

Pair = Tuple[str, str]


def standard_name(residue_name: str) -> str:
    """The table's name for ``residue_name`` (``HIE`` → ``HIS``), or the name itself."""
    return ALIASES.get(residue_name, residue_name)


def _parse(entries: str, kind: int) -> Dict[Tuple[str, ...], Tuple[float, float]]:
    parsed = {}
    for entry in (e.strip() for e in entries.split(",")):
        if entry:
            atoms, mean, sd = entry.split()
            names = tuple(atoms.split("-"))
            assert len(names) == kind, entry
            parsed[names] = (float(mean), float(sd))
    return parsed


@functools.lru_cache(maxsize=None)
def residue_geometry(residue_name: str) -> Tuple[Dict[Pair, Tuple[float, float]], Dict[Tuple[str, str, str],
                                                                                     Tuple[float, float]]]:
    """(bonds, angles) of a standard residue: ``{(a, b): (Å, sd)}`` and ``{(a, b, c): (degrees, sd)}``; empty
    for a residue the table lacks."""
    text = _TABLE.get(standard_name(residue_name))
    if text is None:
        return {}, {}
    bonds_text, angles_text = text.replace("+BB", _BACKBONE.split(";")[0] + ",").split(";", 1)
    angles_text = angles_text.replace("+CB", _CB + ",")
    if "+BB" in text:
        angles_text = _BACKBONE.split(";")[1] + "," + angles_text
    return _parse(bonds_text, 2), _parse(angles_text, 3)


@functools.lru_cache(maxsize=None)
def distance_bounds(residue_name: str, tolerance_factor: float = TOLERANCE_FACTOR) -> Dict[Pair, Tuple[float, float,
                                                                                                      str]]:
    """``{(a, b): (lower Å, upper Å, kind)}`` for the bonded (kind ``bond``) and 1–3 (kind ``angle``) atom pairs
    of a residue: mean ± ``tolerance_factor`` standard deviations. Other pairs within a residue are bounded below
    by the clash rule only (see :mod:`.violations`)."""
    bonds, angles = residue_geometry(residue_name)
    bonds = {_key(a, b): value for (a, b), value in bonds.items()}
    bounds: Dict[Pair, Tuple[float, float, str]] = {}
    for (a, b), (length, sd) in bonds.items():
        bounds[(a, b)] = (length - tolerance_factor * sd, length + tolerance_factor * sd, "bond")
    for (a, b, c), (degrees, sd_degrees) in angles.items():
        length, sd = one_three_distance(bonds[_key(a, b)], bonds[_key(b, c)], degrees, sd_degrees)
        bounds[_key(a, c)] = (length - tolerance_factor * sd, length + tolerance_factor * sd, "angle")
    return bounds


def one_three_distance(bond1: Tuple[float, float], bond2: Tuple[float, float], degrees: float,
                       sd_degrees: float) -> Tuple[float, float]:
    """The distance spanned by two bonds at an angle (law of cosines) and its standard deviation, propagated to
    first order from the standard deviations of the two lengths and of the angle."""
    (b1, s1), (b2, s2) = bond1, bond2
    gamma, s_gamma = math.radians(degrees), math.radians(sd_degrees)
    length = math.sqrt(b1 * b1 + b2 * b2 - 2 * b1 * b2 * math.cos(gamma))
    d_gamma = b1 * b2 * math.sin(gamma) / length
    d_b1 = (b1 - b2 * math.cos(gamma)) / length
    d_b2 = (b2 - b1 * math.cos(gamma)) / length
    return length, math.sqrt((d_gamma * s_gamma) ** 2 + (d_b1 * s1) ** 2 + (d_b2 * s2) ** 2)


def _key(a: str, b: str) -> Pair:
    return (a, b) if (a, b) <= (b, a) else (b, a)


def known_residues() -> Tuple[str, ...]:
    """The 20 residues of the table."""
    return tuple(sorted(_TABLE))


__all__ = ["TOLERANCE_FACTOR", "CLASH_OVERLAP_ANGSTROM", "VDW_RADII_ANGSTROM", "PEPTIDE_BOND",
           "PEPTIDE_BOND_BEFORE_PRO", "COS_CA_C_N", "COS_C_N_CA", "residue_geometry", "distance_bounds",
           "one_three_distance", "standard_name", "known_residues"]
