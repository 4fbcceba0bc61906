"""AlphaFold's structural violations (app.violations, app.stereochemistry) and chain breaks (app.chain_breaks).

The counts are checked against an independent implementation of AlphaFold's rules written out below in its own
form (dense distance-bound matrices over all checked atoms, as AlphaFold's atom14 code computes them, and the
1-3 standard deviations by finite differences instead of the module's analytic propagation)."""
import math
import os

import numpy as np
import pytest
from openmm import app, unit

pytest.importorskip("pdbfixer")

from openmm_reparam.app.chain_breaks import find_chain_breaks  # noqa: E402
from openmm_reparam.app.prepare import prepare  # noqa: E402
from openmm_reparam.app.relax import prepare_for_relax  # noqa: E402
from openmm_reparam.app.stereochemistry import (distance_bounds, known_residues, one_three_distance,  # noqa: E402
                                                residue_geometry, standard_name)
from openmm_reparam.app.violations import find_violations  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
BREAKS = os.path.join(DATA, "1hlo_A3-42_breaks.pdb")  # 1HLO chain A 3-42 without 13-14 and 31-32
STRUCTURES = {"5AWL": os.path.join(DATA, "5AWL.pdb"), "1HLO_breaks": BREAKS,
              "1PLW": os.path.join(DATA, "1PLW_model1.pdb")}
RADII = {"C": 1.7, "N": 1.55, "O": 1.52, "S": 1.8}
FACTOR = 12.0


@pytest.fixture(scope="module")
def prepared():
    return {name: prepare_for_relax(path)[0] for name, path in STRUCTURES.items()}


def xyz_of(structure):
    return np.asarray(structure.positions.value_in_unit(unit.nanometer))


# --- the independent check -----------------------------------------------------------------------------------

def _one_three_numeric(b1, b2, degrees, sd_degrees):
    length = lambda l1, l2, g: math.sqrt(l1 * l1 + l2 * l2 - 2 * l1 * l2 * math.cos(math.radians(g)))  # noqa
    h = 1e-6
    grads = [(length(b1[0] + h, b2[0], degrees) - length(b1[0] - h, b2[0], degrees)) / (2 * h),
             (length(b1[0], b2[0] + h, degrees) - length(b1[0], b2[0] - h, degrees)) / (2 * h),
             (length(b1[0], b2[0], degrees + h) - length(b1[0], b2[0], degrees - h)) / (2 * h)]
    sd = math.sqrt((grads[0] * b1[1]) ** 2 + (grads[1] * b2[1]) ** 2 + (grads[2] * sd_degrees) ** 2)
    return length(b1[0], b2[0], degrees), sd


def _bounds(residues, names, res, radius):
    """AlphaFold's atom-pair bounds: clash rule everywhere, bonds and 1-3 pairs within a residue."""
    lower = radius[:, None] + radius[None, :] - 1.5
    upper = np.full(lower.shape, np.inf)
    kind = np.full(lower.shape, "clash", dtype=object)
    where = {(r, n): k for k, (r, n) in enumerate(zip(res, names))}
    for residue in residues:
        bonds, angles = residue_geometry(residue.name)
        lookup = {frozenset(pair): value for pair, value in bonds.items()}
        pairs = [(pair, value, "bond") for pair, value in bonds.items()]
        pairs += [((a, c), _one_three_numeric(lookup[frozenset((a, b))], lookup[frozenset((b, c))], deg, sd), "angle")
                  for (a, b, c), (deg, sd) in angles.items()]
        for (a, b), (mean, sd), label in pairs:
            p, q = where.get((residue.index, a)), where.get((residue.index, b))
            if p is not None and q is not None:
                for s, t in ((p, q), (q, p)):
                    lower[s, t], upper[s, t], kind[s, t] = mean - FACTOR * sd, mean + FACTOR * sd, label
    return lower, upper, kind


def alphafold_check(topology, xyz_nm):
    """(counts by kind, violating residue indices) by AlphaFold's rules, computed densely."""
    xyz = np.asarray(xyz_nm) * 10
    residues = [r for r in topology.residues() if standard_name(r.name) in known_residues()]
    atoms = [(r.index, a) for r in residues for a in r.atoms() if a.element.symbol != "H" and a.name != "OXT"]
    res = np.array([r for r, _ in atoms])
    names = [a.name for _, a in atoms]
    index = np.array([a.index for _, a in atoms])
    positions = xyz[index]
    distance = np.linalg.norm(positions[:, None] - positions[None, :], axis=-1)
    lower, upper, kind = _bounds(residues, names, res, np.array([RADII[n[0]] for n in names]))
    where = {(r, n): k for k, (r, n) in enumerate(zip(res, names))}
    counts = {"clash": 0, "bond": 0, "angle": 0}
    violating = set()
    mask = np.triu(np.ones(distance.shape, bool), 1)
    for chain in topology.chains():
        members = [r for r in chain.residues() if r in residues]
        for first, second in zip(members, members[1:]):
            c, n = where[(first.index, "C")], where[(second.index, "N")]
            if distance[c, n] > 2.5:
                continue
            mask[c, n] = mask[n, c] = False  # the peptide bond is no clash
            ca1, ca2 = where[(first.index, "CA")], where[(second.index, "CA")]
            mean, sd = (1.341, 0.016) if second.name == "PRO" else (1.329, 0.014)
            checks = [(distance[c, n], mean, sd, "bond"),
                      (_cos(positions[ca1], positions[c], positions[n]), -0.4473, 0.0311, "angle"),
                      (_cos(positions[c], positions[n], positions[ca2]), -0.5203, 0.0353, "angle")]
            for value, mean, sd, label in checks:
                if abs(value - mean) > FACTOR * sd:
                    counts[label] += 1
                    violating |= {first.index, second.index}
    sulfur = np.array([n == "SG" for n in names])
    mask &= ~(sulfur[:, None] & sulfur[None, :] & (res[:, None] != res[None, :]))
    bad = mask & ((distance < lower) | (distance > upper))
    for p, q in zip(*np.nonzero(bad)):
        counts[kind[p, q]] += 1
        violating |= {res[p], res[q]}
    return counts, violating


def _cos(a, b, c):
    u, v = a - b, c - b
    return float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))


# --- the tests -----------------------------------------------------------------------------------------------

def test_the_table_is_engh_and_huber_and_its_one_three_sigmas_propagate():
    bonds, angles = residue_geometry("HIS")
    assert bonds[("CE1", "NE2")] == (1.322, 0.023) and angles[("CG", "ND1", "CE1")] == (108.2, 1.4)
    assert residue_geometry("GLY")[0][("N", "CA")] == (1.456, 0.015) and residue_geometry("HIE") == (bonds, angles)
    assert residue_geometry("PRO")[1][("CA", "N", "CD")] == (111.7, 1.4) and residue_geometry("DA") == ({}, {})
    assert sum(len(residue_geometry(r)[0]) + len(residue_geometry(r)[1]) for r in known_residues()) == 327
    for (b1, b2, degrees, sd) in [((1.459, 0.020), (1.525, 0.026), 111.0, 2.7), ((1.3, 0.01), (1.4, 0.05), 95, 4)]:
        assert one_three_distance(b1, b2, degrees, sd) == pytest.approx(_one_three_numeric(b1, b2, degrees, sd),
                                                                         rel=1e-6)
    lower, upper, kind = distance_bounds("ALA")[("CA", "CB")]
    assert kind == "bond" and lower == pytest.approx(1.268) and upper == pytest.approx(1.772)


@pytest.mark.parametrize("name", sorted(STRUCTURES))
@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_counts_match_an_independent_check_of_alphafolds_rules(prepared, name, noise):
    structure = prepared[name]
    xyz = xyz_of(structure) + np.random.default_rng(7).normal(0.0, noise, xyz_of(structure).shape)
    found = find_violations(structure.topology, xyz)
    counts, violating = alphafold_check(structure.topology, xyz)
    assert {"clash": len(found.clashes), "bond": len(found.bonds), "angle": len(found.angles)} == counts
    assert found.residues == violating
    if noise == 0.0:
        assert found.count == 0  # crystal structures, histidines included, are well formed
    else:
        assert found.count > 20 and len(found.bonds) and len(found.angles)  # 0.2 A per coordinate is not


def test_no_histidine_is_flagged_in_a_well_formed_structure(prepared):
    structure = prepared["1HLO_breaks"]
    histidines = [r for r in structure.topology.residues() if r.name == "HIS"]
    assert [r.id for r in histidines] == ["17", "18", "28", "34"]
    assert find_violations(structure.topology, structure.positions).count == 0


def test_a_stretched_bond_a_bent_angle_and_a_clash_are_found_in_their_residues(prepared):
    structure = prepared["5AWL"]
    topology, positions = structure.topology, xyz_of(structure)
    atom = {(a.residue.index, a.name): a.index for a in topology.atoms()}
    ca, cb = atom[(4, "CA")], atom[(4, "CB")]  # Glu 5: CA-CB 1.535 +- 12 x 0.022 A
    stretched = positions.copy()
    stretched[cb] += 0.05 * (positions[cb] - positions[ca]) / np.linalg.norm(positions[cb] - positions[ca])
    found = find_violations(topology, stretched)
    [bond] = found.bonds
    assert bond.atoms == (min(ca, cb), max(ca, cb)) and not bond.between
    assert bond.value == pytest.approx(10 * np.linalg.norm(positions[cb] - positions[ca]) + 0.5, abs=1e-6)
    assert (bond.lower, bond.upper) == pytest.approx((1.535 - 0.264, 1.535 + 0.264))
    assert found.angles and found.residues == {4}  # the 1-3 distances through CB moved too
    o, n = atom[(0, "O")], atom[(9, "N")]  # Tyr 1 O and Tyr 10 N at 1.2 A: limit 1.52 + 1.55 - 1.5 = 1.57 A
    clashing = positions.copy()
    clashing[n] = positions[o] + 0.12 * (positions[n] - positions[o]) / np.linalg.norm(positions[n] - positions[o])
    found = find_violations(topology, clashing)
    clash = next(v for v in found.clashes if v.atoms == (o, n))
    assert clash.between and clash.value == pytest.approx(1.2) and clash.lower == pytest.approx(1.57)
    assert {0, 9} <= found.residues
    assert found.to_dict(topology)["worst_clash_overlap_angstrom"] >= 0.37 - 1e-6


def test_the_peptide_bond_limit_is_wider_before_a_proline_and_a_break_is_no_violation(prepared):
    structure = prepared["5AWL"]  # Y Y D P E T G T W Y: Asp 3 - Pro 4, Thr 6 - Gly 7
    topology, positions = structure.topology, xyz_of(structure)
    atom = {(a.residue.index, a.name): a.index for a in topology.atoms()}

    def with_c_n(before, length):
        c, n = atom[(before, "C")], atom[(before + 1, "N")]
        moved = positions.copy()
        moved[n] = positions[c] + length * (positions[n] - positions[c]) / np.linalg.norm(positions[n] - positions[c])
        return find_violations(topology, moved), (c, n)

    for before, expect in ((2, False), (5, True)):  # 1.52 A: inside 1.341 + 12 x 0.016, outside 1.329 + 12 x 0.014
        found, pair = with_c_n(before, 0.152)
        assert any(v.atoms == pair and v.kind == "bond" for v in found.items) is expect
    found, _ = with_c_n(5, 0.30)  # 3 A: a chain break, not a violation
    assert not any(v.between and v.kind != "clash" for v in found.items)
    assert [(a, b) for a, b, _ in found.breaks] == [(5, 6)]


def test_a_chain_break_becomes_two_termini_with_no_bond_across_it():
    raw = app.PDBFile(BREAKS)  # OpenMM alone bonds across the gaps
    assert any({b[0].residue.id, b[1].residue.id} == {"12", "15"} for b in raw.topology.bonds())
    assert [(a, b) for a, b, _ in find_chain_breaks(raw.topology, raw.positions)] == [(9, 10), (25, 26)]
    structure, breaks = prepare_for_relax(BREAKS)
    assert [(b["after"], b["before"]) for b in breaks] == [("ALA A 12", "ARG A 15"), ("LYS A 30", "PHE A 33")]
    assert all(3.5 < b["c_n_angstrom"] < 4.5 for b in breaks)
    plain = prepare(BREAKS, forcefield="amber14", solvent="none")  # minimize's preparation: the same rule
    assert plain.changes["chain_breaks"] == breaks
    for prepared in (structure, plain):
        chains = [[r.id for r in c.residues()] for c in prepared.topology.chains()]
        assert [(c[0], c[-1]) for c in chains] == [("3", "12"), ("15", "30"), ("33", "42")]
        assert {c.id for c in prepared.topology.chains()} == {"A"}
        names = {(a.residue.id, a.name) for a in prepared.topology.atoms()}
        assert {("12", "OXT"), ("30", "OXT"), ("15", "H3"), ("33", "H3")} <= names
        across = [b for b in prepared.topology.bonds()
                  if {b[0].residue.id, b[1].residue.id} in ({"12", "15"}, {"30", "33"})]
        assert across == []
    assert prepare_for_relax(STRUCTURES["5AWL"])[1] == []
