"""End-to-end tests of the ``openmm-reparam`` command on real structures (CPU platform, small settings)."""
import contextlib
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import openmm
import pytest
from openmm import app, unit

pytest.importorskip("pdbfixer")
pytest.importorskip("mdtraj")

from openmm_reparam.app.cli import main  # noqa: E402
from openmm_reparam.app.prepare import PreparationError, create_system  # noqa: E402
from openmm_reparam.app.progress import ProgressReporter  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "data")
CHIGNOLIN = os.path.join(DATA, "5AWL.pdb")
ENKEPHALIN_2_MODELS = os.path.join(DATA, "1PLW_models1-2.pdb")
KJ = unit.kilojoule_per_mole
PDB_ROUNDING_NM = 0.5e-4  # PDB coordinates have 3 decimals in Angstrom
CPU_REPEAT_TOLERANCE = 1e-3  # kJ/mol: two evaluations of one structure on the CPU platform (summation order)
FAST = ["--platform", "CPU"]


def run(*argv):
    """Run the CLI in-process; returns (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


def reference_energy_and_forces(topology, positions, solvent="obc2"):
    """Independent evaluation: a fresh System for the written file (same force field and solvent)."""
    system = create_system(topology, "amber14", solvent)
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    state = context.getState(getEnergy=True, getForces=True)
    forces = state.getForces(asNumpy=True).value_in_unit(KJ / unit.nanometer)
    return state.getPotentialEnergy().value_in_unit(KJ), np.asarray(forces)


def kabsch_rmsd(a, b):
    a, b = a - a.mean(axis=0), b - b.mean(axis=0)
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    s[-1] *= d
    return math.sqrt(max(0.0, ((a ** 2).sum() + (b ** 2).sum() - 2 * s.sum()) / len(a)))


def atoms_by_id(topology, positions):
    xyz = np.asarray(positions.value_in_unit(unit.nanometer))
    return {(a.residue.chain.id, a.residue.id, a.residue.name, a.name): xyz[a.index] for a in topology.atoms()}


def no_stray_files(directory):
    return [name for name in os.listdir(directory) if name.startswith(".")] == []


@pytest.fixture(scope="module")
def chignolin_run(tmp_path_factory):
    """One full lbfgs run on 5AWL with every output, shared by several tests."""
    directory = tmp_path_factory.mktemp("chignolin")
    paths = {name: str(directory / name) for name in ("out.pdb", "report.json", "energy.png", "md.dcd", "md.log")}
    status, stdout, stderr = run("minimize", CHIGNOLIN, "-o", paths["out.pdb"], "--method", "lbfgs",
                                 "--report", paths["report.json"], "--plot", paths["energy.png"],
                                 "--md-steps", 40, "--md-interval", 10, "--trajectory", paths["md.dcd"],
                                 "--md-log", paths["md.log"], *FAST)
    return status, stdout, stderr, paths, json.load(open(paths["report.json"])), directory


def test_cli_writes_a_minimized_structure_with_the_input_ids(chignolin_run):
    status, stdout, stderr, paths, report, directory = chignolin_run
    assert status == 0 and stderr == ""  # not a terminal: no progress display
    assert "wrote " + paths["out.pdb"] in stdout
    written, original = app.PDBFile(paths["out.pdb"]), app.PDBFile(CHIGNOLIN)
    ids = lambda top: [(r.chain.id, r.id, r.name) for r in top.residues() if r.name != "HOH"]  # noqa: E731
    assert ids(written.topology) == ids(original.topology)
    assert written.topology.getNumAtoms() == report["preparation"]["atoms"] == 166
    assert no_stray_files(directory)


def test_cli_report_matches_an_independent_evaluation_of_the_written_file(chignolin_run):
    _, _, _, paths, report, _ = chignolin_run
    before, after = report["energy_before"], report["energy_after"]
    assert after["total"] < before["total"] - 100.0
    # the CPU platform sums in a thread-dependent order: re-evaluating the same positions differs by ~1e-5 kJ/mol
    assert sum(after["terms"].values()) == pytest.approx(after["total"], abs=CPU_REPEAT_TOLERANCE)
    assert "CustomGBForce" in after["terms"] and "PositionRestraint" not in after["terms"]
    written = app.PDBFile(paths["out.pdb"])
    energy, forces = reference_energy_and_forces(written.topology, written.positions)
    rounding_bound = math.sqrt(3) * PDB_ROUNDING_NM * np.linalg.norm(forces, axis=1).sum() + 0.05
    assert abs(energy - after["total_without_restraints"]) < rounding_bound
    # RMSD to the input after superposition: C-alpha atoms of the crystal vs the written file.
    crystal = atoms_by_id(app.PDBFile(CHIGNOLIN).topology, app.PDBFile(CHIGNOLIN).positions)
    result = atoms_by_id(written.topology, written.positions)
    ca = [key for key in crystal if key[3] == "CA"]
    independent = 10 * kabsch_rmsd(np.array([crystal[k] for k in ca]), np.array([result[k] for k in ca]))
    assert report["rmsd_to_prepared_input"]["ca_angstrom"] == pytest.approx(independent, abs=0.01)
    assert 0 < report["rmsd_to_prepared_input"]["ca_angstrom"] < report["rmsd_to_prepared_input"]["heavy_angstrom"]


def test_cli_report_has_stages_settings_and_versions(chignolin_run):
    _, _, _, _, report, _ = chignolin_run
    assert [s["name"] for s in report["stages"]] == ["lbfgs"] and report["method_used"] == "lbfgs"
    assert sum(s["iterations"] for s in report["stages"]) == report["iterations"] > 0
    assert report["stages"][0]["final_energy"] == pytest.approx(report["energy_after"]["total"],
                                                                abs=CPU_REPEAT_TOLERANCE)
    assert report["rms_force"] > 0 and report["max_force"] >= report["rms_force"]
    assert report["converged"] == (report["rms_force"] <= report["tolerance"])
    settings = report["settings"]
    assert settings["method"] == "lbfgs" and settings["tolerance"] == 10.0 and settings["seed"] == 0
    assert settings["platform_used"] == "CPU" and settings["preparation"]["forcefield"] == "amber14"
    assert settings["preparation"]["solvent"] == "obc2" and settings["restrained_atoms"] == 0
    assert report["preparation"]["changes"]["heterogens_removed"] == ["HOH x12"]
    assert report["versions"]["openmm"] == openmm.__version__
    assert set(report["versions"]) == {"openmm", "torch", "openmm_reparam", "pdbfixer", "mdtraj", "numpy"}


def test_cli_plot_is_a_png(chignolin_run):
    _, _, _, paths, _, _ = chignolin_run
    with open(paths["energy.png"], "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.getsize(paths["energy.png"]) > 5000


def test_cli_md_writes_the_expected_frames(chignolin_run):
    import mdtraj
    _, _, _, paths, report, _ = chignolin_run
    trajectory = mdtraj.load_dcd(paths["md.dcd"], top=paths["out.pdb"])
    assert trajectory.n_frames == 40 // 10 == report["md"]["frames"]
    assert trajectory.n_atoms == 166
    rows = [line for line in open(paths["md.log"]) if not line.startswith("#")]
    assert [int(row.split(",")[0]) for row in rows] == [10, 20, 30, 40]
    # The first frame starts from the minimized structure: it moved less than 1 A from it.
    start = app.PDBFile(paths["out.pdb"]).getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    assert np.abs(trajectory.xyz[0] - start).max() < 0.1


def test_cli_gnn_on_model_one_of_an_nmr_file_writes_mmcif(tmp_path):
    out, report_path = tmp_path / "enk.cif", tmp_path / "enk.json"
    status, _, _ = run("minimize", ENKEPHALIN_2_MODELS, "-o", out, "--report", report_path, "--quiet",
                       "--method", "gnn", "--steps", 20, "--fine-steps", 20, "--option", "never_worse=false",
                       "--option", "n_modes=8", "--option", "fit_steps=100", *FAST)
    assert status == 0
    report = json.load(open(report_path))
    assert [s["name"] for s in report["stages"]] == ["slow_modes", "fit", "reparam", "fine", "polish"]
    assert report["minimizer_options"]["n_modes"] == 8 and report["settings"]["method"] == "gnn"
    assert report["preparation"]["changes"]["model_used"] == 1
    written = app.PDBxFile(str(out))
    model1 = app.PDBFile(os.path.join(DATA, "1PLW_model1.pdb"))
    assert [(r.chain.id, r.id, r.name) for r in written.topology.residues()] == \
        [(r.chain.id, r.id, r.name) for r in model1.topology.residues()]
    assert report["energy_after"]["total"] < report["energy_before"]["total"]
    energy, forces = reference_energy_and_forces(written.topology, written.positions)
    bound = math.sqrt(3) * PDB_ROUNDING_NM * np.linalg.norm(forces, axis=1).sum() + 0.05
    assert abs(energy - report["energy_after"]["total"]) < bound
    # Minimized from model 1, not model 2: nearer to model 1.
    moved = written.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    models = app.PDBFile(ENKEPHALIN_2_MODELS)
    to_model = [kabsch_rmsd(moved, models.getPositions(asNumpy=True, frame=i).value_in_unit(unit.nanometer))
                for i in (0, 1)]
    assert to_model[0] < to_model[1]


@pytest.mark.parametrize("restrain, selected", [("heavy", lambda a: a.element.symbol != "H"),
                                                ("ca", lambda a: a.name == "CA")])
def test_cli_restraints_keep_restrained_atoms_close(tmp_path, restrain, selected):
    out, report_path = tmp_path / "relaxed.pdb", tmp_path / "relaxed.json"
    status, _, _ = run("minimize", CHIGNOLIN, "-o", out, "--method", "lbfgs", "--restrain", restrain,
                       "--report", report_path, "--quiet", *FAST)
    assert status == 0
    report = json.load(open(report_path))
    after = report["energy_after"]
    assert after["terms"]["PositionRestraint"] > 0
    assert after["total"] - after["total_without_restraints"] == pytest.approx(after["terms"]["PositionRestraint"])
    written = app.PDBFile(str(out))
    crystal = atoms_by_id(app.PDBFile(CHIGNOLIN).topology, app.PDBFile(CHIGNOLIN).positions)
    result = atoms_by_id(written.topology, written.positions)
    chosen = [(a.residue.chain.id, a.residue.id, a.residue.name, a.name) for a in written.topology.atoms()
              if selected(a)]
    assert len(chosen) == report["settings"]["restrained_atoms"]
    displacement = max(np.linalg.norm(result[key] - crystal[key]) for key in chosen)
    assert displacement < 0.05  # nm: every restrained atom stays within 0.5 A of its input position


def test_cli_explicit_water_run_is_periodic_and_restrained(tmp_path):
    out, report_path = tmp_path / "solvated.pdb", tmp_path / "solvated.json"
    status, _, _ = run("minimize", CHIGNOLIN, "-o", out, "--method", "lbfgs", "--solvent", "tip3p", "--padding", 0.6,
                       "--max-iterations", 50, "--restrain", "ca", "--report", report_path, "--quiet", *FAST)
    assert status == 0
    report = json.load(open(report_path))
    assert report["preparation"]["periodic"]
    assert report["energy_after"]["total"] < report["energy_before"]["total"]
    assert "CustomGBForce" not in report["energy_after"]["terms"]
    written = app.PDBFile(str(out))
    assert written.topology.getPeriodicBoxVectors() is not None
    assert sum(r.name == "HOH" for r in written.topology.residues()) > 300
    crystal = atoms_by_id(app.PDBFile(CHIGNOLIN).topology, app.PDBFile(CHIGNOLIN).positions)
    result = atoms_by_id(written.topology, written.positions)
    ca = [key for key in crystal if key[3] == "CA"]
    assert max(np.linalg.norm(result[key] - crystal[key]) for key in ca) < 0.05


# --- bad input ----------------------------------------------------------------------------------------------

def _unknown_residue_file(directory):
    text = "".join(line[:17] + "XYZ" + line[20:] if line.startswith("ATOM") and line[22:26].strip() == "5" else line
                   for line in open(CHIGNOLIN).read().splitlines(keepends=True))
    path = directory / "unknown.pdb"
    path.write_text(text)
    return path


def _coincident_atoms_file(directory):
    """Chignolin with the C-alpha of residue 5 moved exactly onto that of residue 6: a non-finite energy."""
    lines = open(CHIGNOLIN).read().splitlines(keepends=True)
    find = lambda res: next(i for i, line in enumerate(lines) if line.startswith("ATOM")  # noqa: E731
                            and line[22:26].strip() == res and line[12:16].strip() == "CA")
    a, b = find("5"), find("6")
    lines[a] = lines[a][:30] + lines[b][30:54] + lines[a][54:]
    path = directory / "coincident.pdb"
    path.write_text("".join(lines))
    return path


def _ligand_file(directory):
    """Chignolin plus a one-atom ligand "LIG" that no force field has a template for."""
    lines = [line for line in open(CHIGNOLIN).read().splitlines(keepends=True)
             if not line.startswith(("END", "MASTER", "CONECT"))]
    ligand = "HETATM  999  C1  LIG B   1       1.000   1.000   1.000  1.00  0.00           C  \n"
    path = directory / "ligand.pdb"
    path.write_text("".join(lines) + ligand + "END\n")
    return path


def _write(directory, name, content):
    path = directory / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


BAD_CASES = {
    "missing file": (lambda d: d / "missing.pdb", [], "does not exist"),
    "empty file": (lambda d: _write(d, "empty.pdb", ""), [], "empty"),
    "garbage text": (lambda d: _write(d, "garbage.pdb", "hello\nworld\n"), [], "no ATOM or HETATM records"),
    "binary garbage": (lambda d: _write(d, "binary.pdb", bytes(range(256)) * 4), [], "not a text file"),
    "garbage mmcif": (lambda d: _write(d, "garbage.cif", "data_x\nloop_\n_atom_site.id\n"), [], "cannot read"),
    "unknown residue": (_unknown_residue_file, [], "unknown residue XYZ"),
    "coincident atoms": (_coincident_atoms_file, ["--platform", "CPU"], "non-finite energy"),
    "heterogen without template": (_ligand_file, ["--keep-heterogens"], "no template for residue LIG"),
    "unknown force field": (lambda d: CHIGNOLIN, ["--forcefield", "amber99xyz"], "unknown force field"),
    "unknown platform": (lambda d: CHIGNOLIN, ["--platform", "Abacus"], "unknown platform"),
    "unknown minimizer option": (lambda d: CHIGNOLIN, ["--option", "warp_speed=9"], "warp_speed"),
    "trajectory without md": (lambda d: CHIGNOLIN, ["--trajectory", "t.dcd"], "--md-steps"),
    "md without constraints": (lambda d: CHIGNOLIN, ["--md-steps", "10", "--constraints", "none"], "constraints"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_is_a_one_line_error_with_status_2(tmp_path, case):
    make_input, extra, expected = BAD_CASES[case]
    out = tmp_path / "out.pdb"
    status, stdout, stderr = run("minimize", make_input(tmp_path), "-o", out, "--method", "lbfgs", *extra)
    assert status == 2
    assert stderr.startswith("openmm-reparam: error: ") and stderr.count("\n") == 1, stderr
    assert expected in stderr and "Traceback" not in stderr
    assert not out.exists() and no_stray_files(tmp_path)


@pytest.mark.parametrize("where", ["missing directory", "a directory", "bad extension", "report directory"])
def test_unwritable_outputs_fail_before_any_work(tmp_path, where):
    out, extra = tmp_path / "out.pdb", []
    if where == "missing directory":
        out = tmp_path / "no" / "such" / "out.pdb"
    elif where == "a directory":
        out = tmp_path
    elif where == "bad extension":
        out = tmp_path / "out.xyz"
    else:
        extra = ["--report", tmp_path / "missing" / "report.json"]
    status, _, stderr = run("minimize", CHIGNOLIN, "-o", out, "--method", "lbfgs", *extra, *FAST)
    assert status == 2 and stderr.startswith("openmm-reparam: error: ") and stderr.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == []  # nothing written, not even the structure


def test_failed_run_leaves_an_existing_output_untouched(tmp_path):
    out = tmp_path / "out.pdb"
    out.write_text("previous result\n")
    status, _, _ = run("minimize", _write(tmp_path, "bad.pdb", "nonsense\n"), "-o", out)
    assert status == 2 and out.read_text() == "previous result\n"


def test_debug_flag_shows_the_exception(tmp_path):
    with pytest.raises(PreparationError):
        main(["minimize", str(tmp_path / "missing.pdb"), "-o", str(tmp_path / "o.pdb"), "--debug"])


def test_bad_flag_values_are_usage_errors(tmp_path):
    with contextlib.redirect_stderr(io.StringIO()) as err, pytest.raises(SystemExit) as exit_info:
        main(["minimize", CHIGNOLIN, "-o", str(tmp_path / "o.pdb"), "--tolerance", "-1"])
    assert exit_info.value.code == 2 and "must be > 0" in err.getvalue()


def test_console_script_reports_errors_without_traceback(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "openmm-reparam")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "openmm_reparam.cli"]
    completed = subprocess.run(command + ["minimize", str(tmp_path / "missing.pdb"), "-o", str(tmp_path / "o.pdb")],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("openmm-reparam: error: ") and "Traceback" not in completed.stderr
    assert len(completed.stderr.strip().splitlines()) == 1


# --- progress display -----------------------------------------------------------------------------------------

def test_progress_reporter_draws_on_a_terminal_only():
    from openmm_reparam.api.minimizer import minimize
    from openmm_reparam.app.prepare import prepare

    class FakeTerminal(io.StringIO):
        def isatty(self):
            return True

    prepared = prepare(os.path.join(DATA, "1PLW_model1.pdb"), solvent="none")
    for stream, expect_output in ((FakeTerminal(), True), (io.StringIO(), False)):
        context = openmm.Context(prepared.system, openmm.VerletIntegrator(0.001),
                                 openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(prepared.positions)
        reporter = ProgressReporter(stream=stream, interval=0.0, max_iterations=20, delay=0.0)
        minimize(context, 10.0, 20, reporter, method="lbfgs")
        reporter.close()
        assert reporter.calls > 0  # the core called report() every iteration
        text = stream.getvalue()
        assert bool(text) == expect_output
        if expect_output:
            assert "lbfgs" in text and "kJ/mol" in text and "\r" in text and "100%" in text
            assert "RMS F" in text


# --- stiffness modes after minimizing ---------------------------------------------------------------------------

def test_stiffness_modes_are_reported_and_summarized(tmp_path):
    pytest.importorskip("openmm_reparam.analysis.stiffness")
    out, report_path = tmp_path / "enk.pdb", tmp_path / "enk.json"
    status, stdout, _ = run("minimize", os.path.join(DATA, "1PLW_model1.pdb"), "-o", out, "--method", "lbfgs",
                            "--solvent", "none", "--tolerance", 1, "--stiffness-modes", 5, "--report", report_path,
                            *FAST)
    assert status == 0
    stiffness = json.load(open(report_path))["stiffness"]
    assert len(stiffness["frequencies"]) == 5 and stiffness["frequencies"] == sorted(stiffness["frequencies"])
    assert stiffness["is_minimum"] == (min(stiffness["frequencies"]) >= -stiffness["threshold"])
    assert ("stiffness: a true minimum" in stdout) == stiffness["is_minimum"]
    assert ("stiffness: NOT a true minimum" in stdout) == (not stiffness["is_minimum"])


def test_without_stiffness_modes_the_report_has_none(chignolin_run):
    assert "stiffness" not in chignolin_run[4]


# --- the beyond-the-paper methods through the command line ------------------------------------------------------

def test_default_method_in_implicit_solvent_is_precon_and_reported(tmp_path):
    """No --method: auto resolves to precon for this OBC2 System; the report names it and its stages, and the
    written structure has the energy the report gives."""
    out, report_path = tmp_path / "enk.pdb", tmp_path / "enk.json"
    status, stdout, _ = run("minimize", os.path.join(DATA, "1PLW_model1.pdb"), "-o", out, "--report", report_path,
                            *FAST)
    assert status == 0
    report = json.load(open(report_path))
    assert report["settings"]["method"] == "auto" and report["method_used"] == "precon"
    assert [s["name"] for s in report["stages"]][0] == "declash" and report["converged"]
    pdb = app.PDBFile(str(out))
    energy, _ = reference_energy_and_forces(pdb.topology, pdb.positions)
    assert energy == pytest.approx(report["energy_after"]["total"], abs=0.5)  # PDB rounding of 3 decimals


def test_restarts_through_option_are_recorded_in_the_report(tmp_path):
    report_path = tmp_path / "enk.json"
    status, _, _ = run("minimize", os.path.join(DATA, "1PLW_model1.pdb"), "-o", tmp_path / "enk.pdb",
                       "--method", "gnn", "--option", "restarts=2", "--option", "steps=30", "--option", "fine_steps=30",
                       "--option", "fit_steps=100", "--report", report_path, *FAST)
    assert status == 0
    report = json.load(open(report_path))
    restarts = report["restarts"]
    assert report["settings"]["options"]["restarts"] == 2 and 1 <= len(restarts) <= 2
    assert {"restart1"} <= {s["name"] for s in report["stages"]}
    assert all(np.isfinite(r["final_energy"]) for r in restarts)
