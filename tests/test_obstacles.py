"""A run that cannot converge names the atoms that hold it back (``MinimizationResult.obstacles``), on real
Contexts: met-enkephalin from a clash, stopped after a few iterations, checked against the Context's own forces
and a brute-force distance search."""
import json

import numpy as np
import openmm
import pytest
from openmm import app, unit

from openmm_reparam import minimize
from openmm_reparam.core.constraints import ConstraintProjector
from openmm_reparam.core.obstacles import bonded_neighbors, describe_obstacles
from openmm_reparam.testing import load_peptide, make_context, prepared_pdb

FORCE = unit.kilojoule_per_mole / unit.nanometer
CLASHED = 40  # Phe 4's backbone O, put 0.08 nm from Tyr 1's O


def _clash_start(positions):
    start = positions.copy()
    start[CLASHED] = positions[3] + np.array([0.08, 0.0, 0.0])
    return start


def _forces_and_positions(context):
    state = context.getState(getForces=True, getPositions=True)
    return (state.getForces(asNumpy=True).value_in_unit(FORCE),
            state.getPositions(asNumpy=True).value_in_unit(unit.nanometer))


def _bonded_within_two(topology):
    """Pairs at most two bonds apart, from the topology's bonds (not from the System)."""
    direct = {a.index: set() for a in topology.atoms()}
    for a, b in topology.bonds():
        direct[a.index].add(b.index)
        direct[b.index].add(a.index)
    return {i: (n | set().union(*(direct[k] for k in n))) - {i} for i, n in direct.items()}


def _label(topology, index):
    atom = list(topology.atoms())[index]
    chain = f"{atom.residue.chain.id}:" if topology.getNumChains() > 1 else ""
    return f"{chain}{atom.residue.name} {atom.residue.id} {atom.name}"


def test_an_unconverged_run_names_the_atoms_with_the_largest_forces():
    topology, system, positions = load_peptide("1plw")
    context = make_context(system, _clash_start(positions))
    result = minimize(context, maxIterations=3, method="adam")
    assert not result.converged and len(result.obstacles) == 5
    forces, x = _forces_and_positions(context)
    magnitude = np.linalg.norm(forces, axis=1)
    largest = np.argsort(-magnitude)[:5]
    assert [o.atom for o in result.obstacles] == list(largest)
    assert np.allclose([o.force for o in result.obstacles], magnitude[largest], rtol=1e-6)
    near = _bonded_within_two(topology)
    for o in result.obstacles:  # the nearest atom that is not bonded to it, by brute force
        distance = np.linalg.norm(x - x[o.atom], axis=1)
        distance[[o.atom, *near[o.atom]]] = np.inf
        assert o.neighbor == int(np.argmin(distance)) and o.distance == pytest.approx(distance.min(), rel=1e-9)
    line = result.held_back_by(topology)
    assert line.startswith("held back by " + _label(topology, largest[0]) + " (force ")
    names = [_label(topology, i) for i in largest[:3]]
    assert [line.index(n) for n in names] == sorted(line.index(n) for n in names)
    assert " nm from " + _label(topology, result.obstacles[0].neighbor) in line
    assert json.dumps(result.to_dict()["obstacles"])  # serializable with the rest of the result


def test_a_converged_run_names_none():
    topology, system, positions = load_peptide("1plw")
    result = minimize(make_context(system, _clash_start(positions)))
    assert result.converged and result.obstacles == [] and result.held_back_by(topology) == ""


def test_with_constraints_the_forces_are_projected_off_them():
    topology, system, positions = load_peptide("1plw", constraints=app.HBonds)
    context = make_context(system, _clash_start(positions))
    result = minimize(context, maxIterations=3, method="adam")
    assert not result.converged and result.obstacles
    forces, x = _forces_and_positions(context)
    projected = np.linalg.norm(ConstraintProjector(system)(forces, x), axis=1)
    top = result.obstacles[0]
    assert top.atom == int(np.argmax(projected)) and top.force == pytest.approx(projected.max(), rel=1e-6)
    assert all(o.force <= np.linalg.norm(forces[o.atom]) * (1 + 1e-9) for o in result.obstacles)


def test_bonded_neighbors_follow_bonds_and_constraints():
    topology, system, _ = load_peptide("1plw", constraints=app.HBonds)
    everyone = range(system.getNumParticles())
    assert bonded_neighbors(system, everyone) == _bonded_within_two(topology)


def test_periodic_distances_use_the_minimum_image():
    """Two free particles near opposite faces of a 3 nm box are 0.2 nm apart, not 2.8."""
    system = openmm.System()
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * unit.nanometer for row in np.eye(3) * 3.0))
    force, box = openmm.CustomExternalForce("100*x"), openmm.NonbondedForce()
    box.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)  # uncharged, no LJ: only makes it periodic
    for i in range(3):
        system.addParticle(1.0)
        force.addParticle(i, [])
        box.addParticle(0.0, 0.1, 0.0)
    system.addForce(force)
    system.addForce(box)
    context = make_context(system, np.array([[0.1, 1.0, 1.0], [2.9, 1.0, 1.0], [1.5, 2.0, 1.0]]))
    from openmm_reparam.core.bridge import EnergyBridge
    from openmm_reparam.core.obstacles import find_obstacles
    obstacles = find_obstacles(EnergyBridge(context))
    assert [(o.atom, o.neighbor) for o in obstacles] == [(0, 1), (1, 0), (2, 0)]
    assert obstacles[0].distance == pytest.approx(0.2, abs=1e-6) and obstacles[0].force == pytest.approx(100.0)


def test_several_chains_are_told_apart():
    """Two copies of met-enkephalin: the same residue names and ids, so the chain goes first (its id where the
    ids differ, else its position)."""
    from openmm_reparam.core.obstacles import Obstacle
    pdb = app.PDBFile(prepared_pdb("1plw"))
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.add(pdb.topology, pdb.positions)
    line = describe_obstacles([Obstacle(75, 100.0, 0, 0.1)], modeller.topology)
    assert line == "held back by 2:TYR 1 N (force 1e2 kJ/mol/nm, 0.10 nm from 1:TYR 1 N)"
    for chain, name in zip(modeller.topology.chains(), "AB"):
        chain.id = name
    assert describe_obstacles([Obstacle(75, 100.0, 0, 0.1)], modeller.topology).startswith("held back by B:TYR 1 N")


def test_describe_uses_short_numbers_and_names_atom_without_neighbor():
    from openmm_reparam.core.obstacles import Obstacle
    topology = app.PDBFile(prepared_pdb("1plw")).topology
    line = describe_obstacles([Obstacle(0, 31234.0, 40, 0.0912), Obstacle(1, 850.0, None, None)], topology)
    assert line == (f"held back by {_label(topology, 0)} (force 3.1e4 kJ/mol/nm, 0.09 nm from "
                    f"{_label(topology, 40)}), {_label(topology, 1)} (force 8.5e2 kJ/mol/nm)")


def test_the_command_line_prints_and_reports_what_holds_a_run_back(tmp_path):
    """``openmm-reparam minimize`` stopped after 3 iterations from a clash: one summary line names the atoms, the
    JSON report has them, and the first is the atom with the largest force in the written structure."""
    pytest.importorskip("pdbfixer")
    import contextlib
    import io
    import os

    from openmm_reparam.app.cli import main
    from openmm_reparam.app.prepare import create_system
    pdb = app.PDBFile(os.path.join(os.path.dirname(__file__), "data", "1PLW_model1.pdb"))
    x = _clash_start(np.array(pdb.positions.value_in_unit(unit.nanometer)))
    clash, out, report = tmp_path / "clash.pdb", tmp_path / "out.pdb", tmp_path / "report.json"
    with open(clash, "w") as handle:
        app.PDBFile.writeFile(pdb.topology, x * unit.nanometer, handle)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = main(["minimize", str(clash), "-o", str(out), "--method", "adam", "--max-iterations", "3",
                       "--report", str(report), "--platform", "CPU"])
    data = json.load(open(report))
    assert status == 0 and not data["converged"] and len(data["obstacles"]) == 5
    held = [line for line in stdout.getvalue().splitlines() if line.startswith("held back by ")]
    assert held == [data["held_back_by"]]
    written = app.PDBFile(str(out))
    system = create_system(written.topology, "amber14", "obc2")  # the command's default: HBonds
    context = make_context(system, np.array(written.positions.value_in_unit(unit.nanometer)))
    forces, positions = _forces_and_positions(context)
    largest = int(np.argmax(np.linalg.norm(ConstraintProjector(system)(forces, positions), axis=1)))
    assert data["obstacles"][0]["atom"] == largest
    assert held[0].startswith(f"held back by {_label(written.topology, largest)} (force ")
