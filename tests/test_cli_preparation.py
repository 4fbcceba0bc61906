"""The command's preparation options on real structures: force fields with extra XML files (a ligand), explicit
water models (virtual sites of 4-site models), box shapes, ionic strength, the prepared structure written before
minimization, CRYST1 only for periodic output, gzip inputs, and iteration counts that agree (CPU platform)."""
import contextlib
import gzip
import io
import json
import math
import os
import re
import shutil

import numpy as np
import pytest
from openmm import app, unit

pytest.importorskip("pdbfixer")
pytest.importorskip("mdtraj")

from openmm_reparam.app.arguments import build_parser  # noqa: E402
from openmm_reparam.app.cli import main  # noqa: E402
from openmm_reparam.app.pipeline import MinimizeSettings, SettingsError  # noqa: E402
from openmm_reparam.app.prepare import forcefield_files, prepare  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
CHIGNOLIN = os.path.join(DATA, "5AWL.pdb")
WITH_LIGAND = os.path.join(DATA, "5AWL_LIG.pdb")   # chignolin and an ethanol named LIG (chain B)
LIGAND_XML = os.path.join(DATA, "lig.xml")         # LIG's template, atom types and parameters
FAST = ["--platform", "CPU", "--method", "lbfgs"]
CHIGNOLIN_CHARGE = -2                              # at pH 7: Asp3, Glu5 and the C-terminus against the N-terminus


def run(*argv):
    """Run the CLI in-process; returns (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def records(path, name):
    return [line for line in open(path) if line.startswith(name)]


def waters(topology):
    return [r for r in topology.residues() if r.name == "HOH"]


def ion_counts(topology):
    return {name: sum(r.name == name for r in topology.residues()) for name in ("NA", "CL")}


# --- explicit solvent: water models, box shapes, ions ------------------------------------------------------

def test_tip4pew_in_a_dodecahedron_with_salt_is_written_prepared_and_minimized(tmp_path):
    out, prepared, report_path = tmp_path / "out.pdb", tmp_path / "prepared.cif", tmp_path / "report.json"
    status, stdout, stderr = run("minimize", CHIGNOLIN, "-o", out, "--solvent", "explicit", "--water", "tip4pew",
                                 "--box", "dodecahedron", "--padding", 0.6, "--ionic-strength", 0.15,
                                 "--write-prepared", prepared, "--report", report_path, "--max-iterations", 30,
                                 *FAST)
    assert status == 0, stderr
    assert f"wrote {prepared}" in stdout
    written, before = app.PDBFile(str(out)), app.PDBxFile(str(prepared))
    assert written.topology.getNumAtoms() == before.topology.getNumAtoms()
    for topology in (written.topology, before.topology):
        assert {len(list(r.atoms())) for r in waters(topology)} == {4}  # O, H1, H2 and the virtual site
        assert all(sorted(a.name for a in r.atoms()) == ["H1", "H2", "M", "O"] for r in waters(topology))
    assert len(records(out, "CRYST1")) == 1
    vectors = np.array([v.value_in_unit(unit.nanometer) for v in written.topology.getPeriodicBoxVectors()])
    lengths = np.linalg.norm(vectors, axis=1)
    assert lengths == pytest.approx([lengths[0]] * 3, rel=1e-3)  # a rhombic dodecahedron: three equal vectors
    assert abs(np.linalg.det(vectors)) == pytest.approx(lengths[0] ** 3 / math.sqrt(2), rel=1e-3)  # a cube's 71%
    ions = ion_counts(written.topology)
    expected_pairs = 0.15 * (len(waters(written.topology)) + sum(ions.values())) / 55.4  # Modeller's rule
    assert ions["NA"] - ions["CL"] == -CHIGNOLIN_CHARGE and abs(ions["CL"] - expected_pairs) <= 1
    report = json.load(open(report_path))
    assert report["energy_after"]["total"] < report["energy_before"]["total"]
    settings, preparation = report["settings"], report["settings"]["preparation"]
    assert (settings["solvent"], settings["water"], settings["box"], settings["ionic_strength"]) == \
        ("explicit", "tip4pew", "dodecahedron", 0.15)
    assert preparation["forcefield_files"] == ["amber14-all.xml", "amber14/tip4pew.xml"]
    assert (preparation["water"], preparation["box"], preparation["ionic_strength_molar"]) == \
        ("tip4pew", "dodecahedron", 0.15)
    assert report["preparation"]["changes"]["ions_added"] == ions
    assert report["prepared_output"] == str(prepared)


@pytest.mark.parametrize("water, box, sites", [("opc", "octahedron", 4), ("tip3pfb", "cube", 3), ("spce", "cube", 3)])
def test_each_water_model_fills_its_box_from_its_own_file(water, box, sites):
    prepared = prepare(CHIGNOLIN, solvent="explicit", water=water, box=box, padding=0.6)
    assert prepared.settings["forcefield_files"][1] == f"amber14/{water}.xml"
    assert {len(list(r.atoms())) for r in waters(prepared.topology)} == {sites}
    virtual = sum(prepared.system.isVirtualSite(i) for i in range(prepared.system.getNumParticles()))
    assert virtual == (len(waters(prepared.topology)) if sites == 4 else 0)
    assert ion_counts(prepared.topology) == {"NA": -CHIGNOLIN_CHARGE, "CL": 0}  # neutralized, no salt asked
    a, b, c = (np.asarray(v.value_in_unit(unit.nanometer)) for v in prepared.topology.getPeriodicBoxVectors())
    if box == "octahedron":
        assert b == pytest.approx([a[0] / 3, a[0] * 2 * math.sqrt(2) / 3, 0], abs=2e-3)
        assert c == pytest.approx([-a[0] / 3, a[0] * math.sqrt(2) / 3, a[0] * math.sqrt(6) / 3], abs=2e-3)
    else:
        assert np.allclose(np.diag([a[0], b[1], c[2]]), np.array([a, b, c])) and a[0] == b[1] == c[2]


def test_solvent_tip3p_is_explicit_tip3p():
    assert forcefield_files("amber14", "tip3p") == forcefield_files("amber14", "explicit", "tip3p") == \
        forcefield_files("amber14", "explicit") == ["amber14-all.xml", "amber14/tip3p.xml"]
    assert forcefield_files("charmm36", "explicit", "tip4pew") == ["charmm36.xml", "charmm36/tip4pew.xml"]
    with pytest.raises(SettingsError, match="solvent 'tip3p' means TIP3P water"):
        MinimizeSettings(solvent="tip3p", water="opc")


@pytest.mark.parametrize("arguments, message", [
    (["--water", "opc"], "water model 'opc' applies to explicit solvent"),
    (["--box", "octahedron"], "box 'octahedron' applies to explicit solvent"),
    (["--ionic-strength", "0.1"], "ionic strength 0.1 M applies to explicit solvent"),
    (["--solvent", "explicit", "--forcefield", "charmm36", "--water", "opc"], "force field charmm36 ships no opc"),
    (["--forcefield", "LIGAND_XML"], "the first force field names the main one"),
    (["--forcefield", "amber14", "--forcefield", "missing.xml"], "force-field file 'missing.xml' does not exist"),
    (["--forcefield", "amber14", "--forcefield", "MALFORMED"], "cannot read force-field file"),
])
def test_preparation_options_that_cannot_apply_are_one_line_errors(tmp_path, arguments, message):
    malformed = tmp_path / "broken.xml"
    malformed.write_text("<ForceField><AtomTypes>\n")
    arguments = [{"LIGAND_XML": LIGAND_XML, "MALFORMED": malformed}.get(a, a) for a in arguments]
    for target in (["-o", tmp_path / "out.pdb"], ["--out-dir", tmp_path / "batch"]):
        status, stdout, stderr = run("minimize", CHIGNOLIN, *target, *arguments, *FAST)
        assert status == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
        assert not (tmp_path / "out.pdb").exists() and not (tmp_path / "batch").exists()


# --- extra force-field files: a ligand ---------------------------------------------------------------------

def test_a_ligand_with_its_own_xml_is_kept_and_minimized(tmp_path):
    out, report_path = tmp_path / "complex.pdb", tmp_path / "complex.json"
    status, _, stderr = run("minimize", WITH_LIGAND, "-o", out, "--keep-heterogens", "--forcefield", "amber14",
                            "--forcefield", LIGAND_XML, "--solvent", "none", "--tolerance", 50,
                            "--report", report_path, *FAST)
    assert status == 0, stderr
    written = app.PDBFile(str(out))
    ligand = [r for r in written.topology.residues() if r.name == "LIG"]
    assert len(ligand) == 1 and sorted(a.name for a in ligand[0].atoms()) == \
        sorted(["C1", "C2", "O1", "H11", "H12", "H13", "H21", "H22", "HO1"])
    report = json.load(open(report_path))
    before, after = report["energy_before"]["total"], report["energy_after"]["total"]
    assert math.isfinite(after) and after < before
    assert report["settings"]["extra_forcefields"] == [LIGAND_XML]
    assert report["settings"]["preparation"]["forcefield_files"] == \
        ["amber14-all.xml", "amber14/tip3p.xml", LIGAND_XML]
    assert not records(out, "CRYST1")  # the input has one; a run in vacuum is not periodic

    status, _, stderr = run("minimize", WITH_LIGAND, "-o", tmp_path / "without.pdb", "--keep-heterogens",
                            "--forcefield", "amber14", "--solvent", "none", *FAST)
    assert status == 2 and len(stderr.strip().splitlines()) == 1
    assert "no template for residue LIG B 1" in stderr and "--forcefield" in stderr


# --- the prepared structure, CRYST1, gzip inputs ---------------------------------------------------------

def test_write_prepared_never_replaces_the_input_without_overwrite(tmp_path):
    source = tmp_path / "in.pdb"
    shutil.copy(CHIGNOLIN, source)
    status, _, stderr = run("minimize", source, "-o", tmp_path / "out.pdb", "--write-prepared", source, *FAST)
    assert status == 2 and "is the input file" in stderr and open(source).read() == open(CHIGNOLIN).read()
    status, _, stderr = run("minimize", source, "-o", tmp_path / "out.pdb", "--write-prepared",
                            tmp_path / "prepared.xyz", *FAST)
    assert status == 2 and "cannot tell the format" in stderr


def test_relax_of_a_gzip_input_writes_the_prepared_structure_without_cryst1(tmp_path):
    compressed = tmp_path / "5awl.pdb.gz"
    with gzip.open(compressed, "wb") as handle:
        handle.write(open(CHIGNOLIN, "rb").read())
    out, prepared = tmp_path / "relaxed.pdb", tmp_path / "prepared.pdb"
    status, stdout, stderr = run("relax", compressed, "-o", out, "--write-prepared", prepared, "--platform", "CPU")
    assert status == 0, stderr
    assert records(CHIGNOLIN, "CRYST1") and not records(out, "CRYST1") and not records(prepared, "CRYST1")
    relaxed, before = app.PDBFile(str(out)), app.PDBFile(str(prepared))
    assert relaxed.topology.getNumAtoms() == before.topology.getNumAtoms() > 93  # the input's atoms and hydrogens


def test_minimize_of_a_gzip_input_matches_the_plain_file(tmp_path):
    compressed = tmp_path / "5awl.pdb.gz"
    with gzip.open(compressed, "wb") as handle:
        handle.write(open(CHIGNOLIN, "rb").read())
    for source, out in ((CHIGNOLIN, tmp_path / "plain.pdb"), (compressed, tmp_path / "packed.pdb")):
        status, _, stderr = run("minimize", source, "-o", out, "--quiet", "--tolerance", 50, *FAST)
        assert status == 0, stderr
    assert records(tmp_path / "plain.pdb", "ATOM") == records(tmp_path / "packed.pdb", "ATOM")
    assert not records(tmp_path / "packed.pdb", "CRYST1")


def test_the_md_trajectory_of_an_implicit_solvent_run_has_no_unit_cell(tmp_path):
    import mdtraj
    out, trajectory = tmp_path / "out.pdb", tmp_path / "md.dcd"
    status, _, stderr = run("minimize", CHIGNOLIN, "-o", out, "--tolerance", 50, "--md-steps", 20, "--md-interval", 10,
                            "--trajectory", trajectory, "--quiet", *FAST)
    assert status == 0, stderr
    frames = mdtraj.load_dcd(str(trajectory), top=str(out))
    assert frames.n_frames == 2 and frames.unitcell_vectors is None  # the input's CRYST1 is not the run's box


def test_a_batch_writes_name_prepared_files_into_the_folder_given(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(CHIGNOLIN, inputs / "plain.pdb")
    with gzip.open(inputs / "packed.pdb.gz", "wb") as handle:
        handle.write(open(CHIGNOLIN, "rb").read())
    status, _, stderr = run("minimize", inputs, "--out-dir", tmp_path / "out", "--write-prepared", inputs, *FAST)
    assert status == 2 and "--write-prepared" in stderr and "a folder the inputs come from" in stderr
    clash = tmp_path / "clash"
    clash.mkdir()
    shutil.copy(CHIGNOLIN, clash / "x.pdb")
    shutil.copy(CHIGNOLIN, clash / "x_prepared.pdb")
    status, _, stderr = run("minimize", clash, "--out-dir", tmp_path / "o", "--write-prepared", tmp_path / "o", *FAST)
    assert status == 2 and "would write" in stderr and "x_prepared.pdb twice" in stderr
    status, _, stderr = run("minimize", inputs, "--out-dir", tmp_path / "out", "--write-prepared",
                            tmp_path / "out", "--workers", 1, "--quiet", *FAST)
    assert status == 0, stderr
    for name in ("plain", "packed"):
        output, prepared = tmp_path / "out" / f"{name}.pdb", tmp_path / "out" / f"{name}_prepared.pdb"
        assert app.PDBFile(str(prepared)).topology.getNumAtoms() == app.PDBFile(str(output)).topology.getNumAtoms()
        assert not records(output, "CRYST1") and not records(prepared, "CRYST1")
        report = json.load(open(tmp_path / "out" / f"{name}.json"))
        assert report["prepared_output"] == str(prepared)


# --- counts and help ---------------------------------------------------------------------------------------

def test_the_summary_counts_iterations_as_the_plot_does(tmp_path):
    report_path, plot = tmp_path / "r.json", tmp_path / "energy.png"
    status, stdout, stderr = run("minimize", CHIGNOLIN, "-o", tmp_path / "out.pdb", "--method", "gnn", "--steps", 30,
                                 "--fine-steps", 10, "--option", "fit_steps=20", "--tolerance", 50,
                                 "--report", report_path, "--plot", plot, "--platform", "CPU")
    assert status == 0, stderr
    report = json.load(open(report_path))
    fit = next(s["iterations"] for s in report["stages"] if s["name"] == "fit")
    printed = re.search(r"; (\d+) iterations \(and (\d+) steps fitting the generator\)", stdout)
    assert printed is not None, stdout
    assert int(printed.group(1)) == report["energy_iterations"] == report["iterations"] - fit > 0
    assert int(printed.group(2)) == fit > 0
    assert open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_plot_shows_the_iterations_of_the_history():
    import openmm
    from openmm_reparam.api.minimizer import minimize
    from openmm_reparam.app.report import history_iterations, plot_history
    prepared = prepare(CHIGNOLIN)
    context = openmm.Context(prepared.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(prepared.positions)
    result = minimize(context, 50.0, 0, method="gnn", steps=20, fine_steps=5, fit_steps=20)
    fit = result.stage("fit").iterations
    path = os.path.join(os.path.dirname(__file__), ".plot-count-check.png")
    try:
        assert plot_history(result.history, path) == history_iterations(result.history) == len(result.history) \
            == result.iterations - fit
    finally:
        if os.path.exists(path):
            os.remove(path)


def test_relax_seed_help_says_what_the_seed_does():
    parser = build_parser("test")
    commands = next(a for a in parser._actions if a.dest == "command").choices
    relax_seed = next(a for a in commands["relax"]._actions if a.dest == "seed").help
    minimize_seed = next(a for a in commands["minimize"]._actions if a.dest == "seed").help
    assert "MD" not in relax_seed.replace("runs no MD", "") and "hydrogens" in relax_seed
    assert "MD velocities" in minimize_seed
