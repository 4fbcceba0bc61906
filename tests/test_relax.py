"""AlphaFold-style relax: violation checks, restraint release, and the relax of noisy models (real Contexts)."""
import contextlib
import io
import json
import math
import os

import numpy as np
import openmm
import pytest
from openmm import app, unit

pytest.importorskip("pdbfixer")
pytest.importorskip("mdtraj")

from openmm_reparam.app.cli import main  # noqa: E402
from openmm_reparam.app.prepare import prepare  # noqa: E402
from openmm_reparam import relax  # noqa: E402  (the public API: openmm_reparam.relax)
from openmm_reparam.app.relax import amber99sb  # noqa: E402
from openmm_reparam.app.restraints import add_position_restraints, update_position_restraints  # noqa: E402
from openmm_reparam.app.violations import find_violations  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
CHIGNOLIN = os.path.join(DATA, "5AWL.pdb")
KJ = unit.kilojoule_per_mole
CLASH_PAIR = (3, 80)  # O of Tyr 1 and N of Tyr 10 in 5AWL.pdb: 2.8 A apart in the crystal


def noisy_model(directory, noise_nm=0.02, clash=False, seed=0):
    """5AWL with Gaussian noise on every coordinate and, if asked, Tyr 10's N pushed to 1.2 A of Tyr 1's O."""
    pdb = app.PDBFile(CHIGNOLIN)
    x = pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    x = x + np.random.default_rng(seed).normal(0.0, noise_nm, x.shape)
    if clash:
        i, j = CLASH_PAIR
        x[j] = x[i] + 0.12 * (x[j] - x[i]) / np.linalg.norm(x[j] - x[i])
    path = directory / f"noisy_{noise_nm}_{int(clash)}.pdb"
    with open(path, "w") as handle:
        app.PDBFile.writeFile(pdb.topology, x * unit.nanometer, handle, keepIds=True)
    return str(path)


def heavy_atoms(path):
    pdb = app.PDBFile(path)
    xyz = pdb.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    return {(a.residue.id, a.name): xyz[a.index] for a in pdb.topology.atoms()
            if a.element.symbol != "H" and a.residue.name != "HOH"}


def kabsch_rmsd_angstrom(a, b):
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    u, s, vt = np.linalg.svd(a.T @ b)
    s[-1] *= np.sign(np.linalg.det(u @ vt))
    return 10 * math.sqrt(max(0.0, ((a ** 2).sum() + (b ** 2).sum() - 2 * s.sum()) / len(a)))


@pytest.fixture(scope="module")
def native():
    prepared = prepare(CHIGNOLIN, solvent="none")
    system = amber99sb().createSystem(prepared.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    return prepared.topology, np.asarray(prepared.positions.value_in_unit(unit.nanometer)), system


def test_the_crystal_structure_has_no_violations(native):
    topology, positions, system = native
    assert find_violations(topology, positions, system).count == 0


def test_a_stretched_bond_a_bent_angle_and_a_clash_are_found_in_their_residues(native):
    topology, positions, system = native
    atoms = list(topology.atoms())
    ca = next(a.index for a in atoms if a.residue.index == 4 and a.name == "CA")
    cb = next(a.index for a in atoms if a.residue.index == 4 and a.name == "CB")
    stretched = positions.copy()
    stretched[cb] += 0.05 * (positions[cb] - positions[ca]) / np.linalg.norm(positions[cb] - positions[ca])
    found = find_violations(topology, stretched, system)
    assert [(i, j) for i, j, _, _ in found.bonds] == [(min(ca, cb), max(ca, cb))]
    crystal_length = 10 * np.linalg.norm(positions[cb] - positions[ca])
    assert found.bonds[0][2] == pytest.approx(crystal_length + 0.5, abs=1e-6)  # 0.5 A longer
    assert found.bonds[0][2] - found.bonds[0][3] > 12 * 0.02  # beyond the tolerance
    assert found.angles and found.residues == {4}
    # An O and an N of residues 1 and 10, 1.2 A apart (limit 1.52 + 1.55 - 1.5 = 1.57 A): one clash.
    by_name = {(a.residue.index, a.name): a.index for a in atoms}
    o, n = by_name[(0, "O")], by_name[(9, "N")]
    clashing = positions.copy()
    clashing[n] = positions[o] + 0.12 * (positions[n] - positions[o]) / np.linalg.norm(positions[n] - positions[o])
    found = find_violations(topology, clashing, system)
    assert [(i, j) for i, j, _, _ in found.clashes] == [(o, n)]
    assert found.clashes[0][2] == pytest.approx(1.2, abs=1e-6) and found.clashes[0][3] == pytest.approx(1.57)
    assert {0, 9} <= found.residues
    assert found.to_dict(topology)["worst_clash_overlap_angstrom"] == pytest.approx(0.37, abs=1e-6)


def test_released_atoms_feel_no_restraint(native):
    topology, positions, _ = native
    system = amber99sb().createSystem(topology, nonbondedMethod=app.NoCutoff)
    force = add_position_restraints(system, topology, positions, "heavy", 1000.0)
    group = force.getForceGroup()
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    moved = positions.copy()
    first, second = force.getParticleParameters(0)[0], force.getParticleParameters(1)[0]
    moved[[first, second]] += [0.1, 0.0, 0.0]
    context.setPositions(moved * unit.nanometer)
    energy = lambda: context.getState(getEnergy=True, groups={group}).getPotentialEnergy().value_in_unit(KJ)  # noqa
    assert energy() == pytest.approx(2 * 0.5 * 1000.0 * 0.01, rel=1e-9)
    assert update_position_restraints(force, context, positions, released=[first]) == force.getNumParticles() - 1
    assert energy() == pytest.approx(0.5 * 1000.0 * 0.01, rel=1e-9)
    assert update_position_restraints(force, context, moved) == force.getNumParticles()  # references moved
    assert energy() == pytest.approx(0.0, abs=1e-9)


def test_relax_of_a_noisy_model_removes_its_clash_and_stays_near_native(tmp_path):
    model, output, report = noisy_model(tmp_path, clash=True), tmp_path / "relaxed.pdb", tmp_path / "relaxed.json"
    data = relax(model, str(output), report=str(report), method="gnn", platform="CPU", threads=1)
    assert data["violations_before"]["clashes"] == 1 and data["violations_before"]["bond_lengths"] > 10
    assert data["violations_after"]["total"] == 0 and data["violations_after"]["clashes"] == 0
    assert data["energy_after"]["total_without_restraints"] < data["energy_before"]["total_without_restraints"]
    assert json.load(open(report))["violations_after"] == data["violations_after"]
    assert data["protocol"]["forcefield"] == "amber99sb.xml" and data["protocol"]["stiffness_kj_mol_nm2"] == 4184.0
    assert data["outer_iterations"][0]["stages"][-1]["name"] == "polish"
    # Independently: the written heavy atoms against the crystal structure, superposed.
    crystal, relaxed = heavy_atoms(CHIGNOLIN), heavy_atoms(str(output))
    assert set(crystal) == set(relaxed)
    keys = sorted(crystal)
    assert kabsch_rmsd_angstrom(np.array([crystal[k] for k in keys]), np.array([relaxed[k] for k in keys])) < 0.5
    written = app.PDBFile(str(output))
    system = amber99sb().createSystem(written.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    assert find_violations(written.topology, written.positions, system).count == 0


def test_violating_residues_are_released_and_minimized_again(tmp_path):
    """Restraints so stiff that one restrained minimization cannot resolve a clash: the clashing residues are
    released and the second outer iteration resolves it."""
    model = noisy_model(tmp_path, noise_nm=0.0, clash=True)
    data = relax(model, None, method="lbfgs", stiffness=1e6, platform="CPU", threads=1)
    first, second = data["outer_iterations"]
    assert first["released_residues"] == [] and first["restrained_atoms"] == 93
    assert first["violations"]["total"] > 0
    assert second["released_residues"] == first["violations"]["violating_residues"] == ["TRP A 9", "TYR A 10"]
    assert second["restrained_atoms"] == 93 - 27  # Trp 9 and Tyr 10 have 14 + 13 heavy atoms
    assert second["violations"]["total"] == 0 == data["violations_after"]["total"]
    assert data["rmsd_to_prepared_input"]["ca_angstrom"] < 0.5


def test_relax_stops_after_max_outer_iterations(tmp_path):
    model = noisy_model(tmp_path, noise_nm=0.0, clash=True)
    data = relax(model, None, method="lbfgs", stiffness=1e6, max_outer_iterations=1, platform="CPU", threads=1)
    assert len(data["outer_iterations"]) == 1 and data["violations_after"]["total"] > 0


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def test_relax_command_writes_the_model_and_report(tmp_path):
    model, output, report = noisy_model(tmp_path), tmp_path / "out.cif", tmp_path / "out.json"
    status, stdout, stderr = run("relax", model, "-o", output, "--report", report, "--method", "lbfgs",
                                 "--platform", "CPU")
    assert status == 0 and stderr == ""
    assert "violations" in stdout and f"wrote {output}" in stdout
    data = json.load(open(report))
    assert data["command"] == "relax" and data["settings"]["method"] == "lbfgs"
    assert data["violations_after"]["total"] == 0 < data["violations_before"]["total"]
    assert app.PDBxFile(str(output)).topology.getNumAtoms() == data["preparation"]["atoms"]


def test_relax_of_garbage_is_a_one_line_error(tmp_path):
    garbage = tmp_path / "garbage.pdb"
    garbage.write_text("not a structure\n")
    status, _, stderr = run("relax", garbage, "-o", tmp_path / "out.pdb")
    assert status == 2 and stderr.startswith("openmm-reparam: error: cannot read") and stderr.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["garbage.pdb"]
