"""PDB/mmCIF preparation (PDBFixer + force fields) and positional restraints, on real OpenMM Systems."""
import math
import os

import numpy as np
import openmm
import pytest
from openmm import app, unit

pytest.importorskip("pdbfixer")

from openmm_reparam.app.prepare import (FORCEFIELDS, PreparationError, ca_indices, create_system,  # noqa: E402
                                    forcefield_files, heavy_atom_indices, prepare)
from openmm_reparam.app.restraints import RESTRAINT_FORCE_NAME, add_position_restraints, restrained_atoms  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
CHIGNOLIN = os.path.join(DATA, "5AWL.pdb")
#: Six residues of BBL with their side chains cut back to CB: PDBFixer rebuilds them with atoms too close
#: together and shakes them apart with Langevin dynamics, whose random numbers come from the seed.
CUT_SIDE_CHAINS = os.path.join(DATA, "2WXC_cut_side_chains.pdb")
ENKEPHALIN_2_MODELS = os.path.join(DATA, "1PLW_models1-2.pdb")
KJ = unit.kilojoule_per_mole


def energy(system, positions, groups=-1):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    return context.getState(getEnergy=True, groups=groups).getPotentialEnergy().value_in_unit(KJ)


def nm(positions):
    return np.array(positions.value_in_unit(unit.nanometer))


@pytest.fixture(scope="module")
def chignolin():
    return prepare(CHIGNOLIN)


def test_chignolin_is_repaired_and_parametrized(chignolin):
    residues = [r.name for r in chignolin.topology.residues()]
    assert residues == ["TYR", "TYR", "ASP", "PRO", "GLU", "THR", "GLY", "THR", "TRP", "TYR"]
    assert chignolin.changes["heterogens_removed"] == ["HOH x12"]
    assert chignolin.changes["hydrogens_added"] == chignolin.topology.getNumAtoms() - 93 > 50
    assert not chignolin.periodic
    forces = {type(f).__name__: f for f in chignolin.system.getForces()}
    assert "CustomGBForce" in forces  # obc2 implicit solvent by default
    assert forces["NonbondedForce"].getNonbondedMethod() == openmm.NonbondedForce.NoCutoff
    assert chignolin.system.getNumConstraints() > 50  # HBonds by default
    assert chignolin.settings["forcefield_files"] == ["amber14-all.xml", "amber14/tip3p.xml", "implicit/obc2.xml"]
    e = energy(chignolin.system, chignolin.positions)
    assert math.isfinite(e) and e < 0
    # Heavy atoms keep their crystal coordinates.
    crystal = app.PDBFile(CHIGNOLIN)
    crystal_heavy = {(a.residue.id, a.name): p for a, p in zip(crystal.topology.atoms(), nm(crystal.positions))
                     if a.residue.name != "HOH"}
    prepared = {(a.residue.id, a.name): p for a, p in zip(chignolin.topology.atoms(), nm(chignolin.positions))}
    assert all(np.allclose(prepared[key], p, atol=1e-6) for key, p in crystal_heavy.items())


def test_preparation_is_reproducible():
    a, b = prepare(CHIGNOLIN, seed=3), prepare(CHIGNOLIN, seed=3)
    assert np.array_equal(nm(a.positions), nm(b.positions))


@pytest.mark.parametrize("seed", [0, 5])
def test_rebuilt_side_chains_are_reproducible(seed):
    # seed 0 used to reach OpenMM's integrator as 0, which OpenMM reads as "a new seed for each Context": three
    # preparations of this file then differed by up to 0.5 nm
    prepared = [prepare(CUT_SIDE_CHAINS, seed=seed) for _ in range(3)]
    assert all(p.changes["heavy_atoms_added"] == 23 for p in prepared)
    first = nm(prepared[0].positions)
    assert all(np.array_equal(first, nm(p.positions)) for p in prepared[1:])


def test_keep_water_and_no_constraints():
    prepared = prepare(CHIGNOLIN, keep_water=True, constraints=None, solvent="none")
    assert sum(r.name == "HOH" for r in prepared.topology.residues()) == 12
    assert prepared.system.getNumConstraints() == 0
    assert not any(isinstance(f, openmm.CustomGBForce) for f in prepared.system.getForces())


def test_multi_model_file_uses_model_one_unless_told(tmp_path):
    first, second = prepare(ENKEPHALIN_2_MODELS), prepare(ENKEPHALIN_2_MODELS, model=2)
    assert first.changes["models_in_file"] == 2 and second.changes["model_used"] == 2
    single = app.PDBFile(os.path.join(DATA, "1PLW_model1.pdb"))
    assert np.allclose(nm(first.positions), nm(single.positions), atol=1e-6)
    assert np.abs(nm(first.positions) - nm(second.positions)).max() > 0.1
    with pytest.raises(PreparationError, match="2 models"):
        prepare(ENKEPHALIN_2_MODELS, model=3)


def test_reads_mmcif_including_a_chosen_model(tmp_path, chignolin):
    path = tmp_path / "chignolin.cif"
    shifted = nm(chignolin.positions) + 0.5
    with open(path, "w") as handle:
        app.PDBxFile.writeHeader(chignolin.topology, handle, keepIds=True)
        app.PDBxFile.writeModel(chignolin.topology, chignolin.positions, handle, modelIndex=1, keepIds=True)
        app.PDBxFile.writeModel(chignolin.topology, shifted * unit.nanometer, handle, modelIndex=2, keepIds=True)
    one, two = prepare(path), prepare(path, model=2)
    assert one.topology.getNumAtoms() == chignolin.topology.getNumAtoms()
    assert one.changes["models_in_file"] == 2 and one.changes["hydrogens_added"] == 0
    assert np.allclose(nm(two.positions) - nm(one.positions), 0.5, atol=1e-3)


def test_missing_heavy_atoms_and_nonstandard_residues_are_fixed(tmp_path):
    lines = open(CHIGNOLIN).read().splitlines(keepends=True)
    edited = []
    for line in lines:
        if line.startswith("ATOM") and line[17:20] == "TRP" and line[12:16].strip() in ("CZ2", "CH2"):
            continue  # drop two ring atoms of Trp 9
        if line.startswith(("ATOM", "HETATM")) and line[17:20] == "TYR" and line[22:26].strip() == "10":
            line = line[:17] + "TYS" + line[20:]  # sulfotyrosine name -> PDBFixer maps it to TYR
        edited.append(line)
    path = tmp_path / "broken.pdb"
    path.write_text("".join(edited))
    fixed, reference = prepare(path), prepare(CHIGNOLIN)
    assert fixed.changes["missing_atoms_added"] == {"TRP A 9": ["CZ2", "CH2"]}
    assert fixed.changes["nonstandard_residues_replaced"] == ["TYS A 10 -> TYR"]
    assert fixed.topology.getNumAtoms() == reference.topology.getNumAtoms()
    assert math.isfinite(energy(fixed.system, fixed.positions))


def test_unknown_residue_inside_a_chain_is_an_error(tmp_path):
    text = "".join(line[:17] + "XYZ" + line[20:] if line.startswith("ATOM") and line[22:26].strip() == "5" else line
                   for line in open(CHIGNOLIN).read().splitlines(keepends=True))
    path = tmp_path / "unknown.pdb"
    path.write_text(text)
    with pytest.raises(PreparationError, match="unknown residue XYZ A 5"):
        prepare(path)


def test_kept_heterogen_without_template_is_an_error(tmp_path):
    ligand = "HETATM  999  C1  LIG B   1       1.000   1.000   1.000  1.00  0.00           C  \n"
    lines = [line for line in open(CHIGNOLIN).read().splitlines(keepends=True)
             if not line.startswith(("END", "MASTER", "CONECT"))]
    path = tmp_path / "ligand.pdb"
    path.write_text("".join(lines) + ligand + "END\n")
    assert prepare(path).changes["heterogens_removed"] == ["HOH x12", "LIG x1"]
    with pytest.raises(PreparationError, match="LIG"):
        prepare(path, keep_heterogens=True)


@pytest.mark.parametrize("content", ["", "   \n", "this is not a structure\nat all\n"])
def test_empty_or_garbage_input_is_an_error(tmp_path, content):
    path = tmp_path / "bad.pdb"
    path.write_text(content)
    with pytest.raises(PreparationError):
        prepare(path)


def test_missing_file_and_unknown_settings_are_errors(tmp_path):
    with pytest.raises(PreparationError, match="does not exist"):
        prepare(tmp_path / "nope.pdb")
    with pytest.raises(PreparationError, match="unknown force field"):
        prepare(CHIGNOLIN, forcefield="amber99-nonsense")
    with pytest.raises(PreparationError, match="unknown solvent"):
        prepare(CHIGNOLIN, solvent="dmso")


def test_force_field_names_map_to_shipped_files():
    data = os.path.join(os.path.dirname(app.__file__), "data")
    for name, (main, water) in FORCEFIELDS.items():
        for solvent in ("none", "obc2", "gbn2", "tip3p"):
            files = forcefield_files(name, solvent)
            assert files[:2] == [main, water]
            assert all(os.path.exists(os.path.join(data, f)) for f in files)
    assert forcefield_files("amber14-all.xml", "none") == forcefield_files("amber14", "none")


def test_amber19_and_charmm36_build_systems():
    a19 = prepare(CHIGNOLIN, forcefield="amber19", solvent="gbn2")
    assert any(isinstance(f, openmm.CMAPTorsionForce) for f in a19.system.getForces())  # ff19SB has CMAP
    c36 = prepare(CHIGNOLIN, forcefield="charmm36", solvent="obc2")
    assert any(isinstance(f, openmm.CustomNonbondedForce) for f in c36.system.getForces())  # CHARMM NBFIX
    for prepared in (a19, c36):
        assert math.isfinite(energy(prepared.system, prepared.positions))


def test_explicit_water_is_periodic_with_pme():
    prepared = prepare(CHIGNOLIN, solvent="tip3p", padding=0.6)
    assert prepared.periodic
    assert prepared.changes["solvent_molecules_added"] > 300
    nonbonded = next(f for f in prepared.system.getForces() if isinstance(f, openmm.NonbondedForce))
    assert nonbonded.getNonbondedMethod() == openmm.NonbondedForce.PME
    box = prepared.topology.getPeriodicBoxVectors()
    assert min(box[i][i].value_in_unit(unit.nanometer) for i in range(3)) > 2.0
    net_charge = sum(nonbonded.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                     for i in range(nonbonded.getNumParticles()))
    assert abs(net_charge) < 1e-6  # neutralized
    assert len(heavy_atom_indices(prepared.topology)) == 93  # solute only: no water oxygens


def test_create_system_matches_prepare(chignolin):
    system = create_system(chignolin.topology, "amber14", "obc2")
    assert energy(system, chignolin.positions) == pytest.approx(energy(chignolin.system, chignolin.positions),
                                                                abs=1e-6)


# --- restraints -------------------------------------------------------------------------------------------

def test_restraint_selection(chignolin):
    heavy, ca = restrained_atoms(chignolin.topology, "heavy"), restrained_atoms(chignolin.topology, "ca")
    assert len(heavy) == 93 and len(ca) == 10 and set(ca) <= set(heavy)
    assert restrained_atoms(chignolin.topology, "none") == []
    assert ca == ca_indices(chignolin.topology)
    with pytest.raises(ValueError):
        restrained_atoms(chignolin.topology, "backbone")


def test_restraint_energy_is_harmonic_in_its_own_group(chignolin):
    system = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(chignolin.system))
    force = add_position_restraints(system, chignolin.topology, chignolin.positions, "ca", stiffness=1000.0)
    assert force.getName() == RESTRAINT_FORCE_NAME and force.getNumParticles() == 10
    group = force.getForceGroup()
    assert [f.getForceGroup() for f in system.getForces()].count(group) == 1
    positions = nm(chignolin.positions)
    assert energy(system, positions * unit.nanometer, groups={group}) == pytest.approx(0.0, abs=1e-9)
    moved = positions.copy()
    moved[ca_indices(chignolin.topology)[3]] += [0.1, 0.0, 0.0]  # one C-alpha 0.1 nm away
    assert energy(system, moved * unit.nanometer, groups={group}) == pytest.approx(0.5 * 1000.0 * 0.01, rel=1e-9)
    assert add_position_restraints(system, chignolin.topology, chignolin.positions, "none") is None


def test_periodic_restraints_use_the_minimum_image():
    prepared = prepare(CHIGNOLIN, solvent="tip3p", padding=0.6)
    force = add_position_restraints(prepared.system, prepared.topology, prepared.positions, "ca", stiffness=500.0)
    assert "periodicdistance" in force.getEnergyFunction()
    box = prepared.topology.getPeriodicBoxVectors()[0][0].value_in_unit(unit.nanometer)
    moved = nm(prepared.positions)
    moved[ca_indices(prepared.topology)[0]] += [box, 0.0, 0.0]  # a whole box length: the same image
    assert energy(prepared.system, moved * unit.nanometer, groups={force.getForceGroup()}) == \
        pytest.approx(0.0, abs=1e-6)


def test_ent_extension_is_read_as_pdb(tmp_path):
    """A .ent file (the PDB archive's extension) is read as PDB."""
    path = tmp_path / "pdb5awl.ent"
    path.write_text(open(CHIGNOLIN).read())
    assert prepare(path, solvent="none").topology.getNumAtoms() == 166


def test_missing_internal_residue_is_built_when_asked(tmp_path):
    text = "".join(line for line in open(CHIGNOLIN).read().splitlines(keepends=True)
                   if not (line.startswith("ATOM") and line[22:26].strip() == "6"))  # delete Thr 6 (SEQRES keeps it)
    path = tmp_path / "gap.pdb"
    path.write_text(text)
    rebuilt = prepare(path, add_missing_residues=True, solvent="none")
    assert [r.name for r in rebuilt.topology.residues()][4:7] == ["GLU", "THR", "GLY"]
    assert rebuilt.changes["missing_residues_added"] == ["chain A before residue #5: THR"]
    assert math.isfinite(energy(rebuilt.system, rebuilt.positions))
    assert prepare(path, solvent="none").topology.getNumResidues() == 9  # not built by default
