"""Smoke tests of the benchmark suite: tiny systems, short budgets, real OpenMM Contexts (CPU/Reference)."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import openmm
import pytest
from openmm import unit

# benchmarks/ is a top-level package of the repository (pytest.ini puts the root on the path).
from benchmarks import __main__ as cli
from benchmarks import everyday, everyday_cases, loops, proteins, report, suites

ROOT = pathlib.Path(__file__).resolve().parent.parent
SUBCOMMANDS = ["run", "report", "make-starts", "sweep", "step-cost", "overhead", "throughput", "first-run",
               "precon-engines", "stiffness", "same-path", "default-runs", "compare", "device-timing", "device-parity",
               "fuzz", "lbfgs-reporter", "boxes", "startup"]


def _energy(system, x, platform="Reference"):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(x)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


# ---- loops -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", loops.VARIANTS)
def test_loop_system_matches_pair_averaged_energy(variant):
    case = loops.load_case(40, variant, seed=3)
    assert case.system.getNumParticles() == 40
    assert np.isclose(_energy(case.system, case.start), loops.loop_energy(case.start, variant), rtol=1e-10)


def test_loop_start_is_seeded_gaussian_with_paper_sigma():
    a, b, c = loops.random_start(1000, 1), loops.random_start(1000, 1), loops.random_start(1000, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(a.std() - 1000 ** (1 / 3) / 4) < 0.1


def test_lj_minimum_is_the_minimum_of_v():
    r0 = loops.lj_minimum()
    assert 1.0 < r0 < 1.3
    assert loops.lj_potential(r0) < min(loops.lj_potential(r0 - 1e-3), loops.lj_potential(r0 + 1e-3))


def test_contact_fraction_counts_designed_pairs_within_cutoff():
    n = 30
    contacts = np.array(loops.designed_contacts(n))
    collapsed = np.zeros((n, 3))  # every particle on one point: collapsed into the r = 0 trap, not contacts
    stretched = np.column_stack([np.arange(n, dtype=float), np.zeros(n), np.zeros(n)])  # |i-j| = 10 apart
    helix = stretched * (loops.lj_minimum() / 10.0)  # every i, i+10 pair exactly at the LJ minimum
    assert loops.loop_metrics(collapsed, contacts)["contacts_formed"] == 0.0
    assert loops.loop_metrics(collapsed, contacts)["contacts_collapsed"] == 1.0
    assert loops.loop_metrics(stretched, contacts)["contacts_formed"] == 0.0
    assert np.isclose(loops.loop_metrics(helix, contacts)["contacts_formed"], 1.0)
    assert np.isclose(loops.loop_metrics(stretched, contacts)["mean_bond_length"], 1.0)


def _check_records(records, n_expected):
    assert len(records) == n_expected
    for r in records:
        assert np.isfinite(r["initial_energy"]) and np.isfinite(r["final_energy"])
        assert r["final_energy"] < r["initial_energy"]
        energies = [p[1] for p in r["history"]]
        assert np.all(np.isfinite(energies))
        assert min(energies) <= energies[0]
        assert r["energy_evaluations"] > 0


def test_loop_suite_smoke_writes_json_table_and_plots(tmp_path):
    records = suites.run_loop(n=30, variants=["bond_lj"], methods=["gnn", "linear", "adam", "lbfgs"], seeds=1,
                              budget=0.5, out_dir=str(tmp_path))
    _check_records(records, 4)
    for r in records:
        assert 0.0 <= r["metrics"]["contacts_formed"] <= 1.0
    assert len(list((tmp_path / "loop" / "bond_lj_n30").glob("*.json"))) == 4
    text = report.write_report(str(tmp_path), "loop")
    assert "| bond_lj_n30 | gnn |" in text and "| bond_lj_n30 | lbfgs |" in text
    assert (tmp_path / "loop" / "RESULTS.md").exists() and (tmp_path / "loop" / "bond_lj_n30.png").stat().st_size > 0


# ---- proteins ----------------------------------------------------------------------------------------------
def test_stored_starts_are_unfolded_past_their_threshold():
    manifest = json.load(open(os.path.join(proteins.DATA_DIR, "starts.json")))
    for name in ("5AWL", "1PLW"):
        case = proteins.load_case(name)
        rmsd = proteins.structure_metrics(case.topology, case.start, case.native)["ca_rmsd"]
        assert rmsd >= proteins.UNFOLD_THRESHOLD_ANGSTROM[name] - 0.01  # PDB rounding
        assert np.isclose(rmsd, manifest[name]["ca_rmsd_angstrom"], atol=0.01)
        assert case.system.getNumConstraints() == 0


def test_superposed_rmsd_ignores_rigid_motion():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    moved = x @ q.T + np.array([1.0, -2.0, 0.5])
    idx = np.arange(20)
    assert proteins.superposed_rmsd(moved, x, idx) < 1e-6
    # half the atoms shifted 0.1 nm: 0.5 A after removing the mean shift, at most that after the best fit
    assert 0.3 < proteins.superposed_rmsd(x + [0.1, 0, 0] * (idx[:, None] % 2), x, idx) <= 0.5 + 1e-9


def test_refold_and_relax_smoke_on_met_enkephalin(tmp_path):
    # Step caps, not a wall-time budget, bound the refold runs: a 1 s budget ran out before the first step on a
    # loaded machine (final energy == start energy, 1 run in 5).
    records = suites.run_refold(names=["1PLW"], methods=["gnn", "lbfgs"], seeds=1, budget=None,
                                options={"steps": 40, "fine_steps": 40}, out_dir=str(tmp_path))
    _check_records(records, 2)
    ref = records[0]["reference_energy"]
    case = proteins.load_case("1PLW", start="native")
    assert ref < _energy(case.system, case.native, "CPU")  # the minimized native is below the native
    for r in records:
        assert 0.0 < r["metrics"]["ca_rmsd"] < 20.0 and 0.0 < r["metrics"]["heavy_rmsd"] < 20.0
    # The budget bounds the whole run, lbfgs included: generous, so that convergence, not the clock of a loaded
    # machine, ends the relax runs (about 1 s each unloaded).
    relax = suites.run_relax(names=["1PLW"], methods=["lbfgs"], seeds=1, budget=60.0, out_dir=str(tmp_path))
    _check_records(relax, 2)
    assert all(r["converged"] and r["metrics"]["ca_rmsd"] < 1.0 for r in relax)
    assert all(0.0 < r["time_to_tolerance"] <= r["wall_time"] for r in relax)
    assert relax[0]["history"][-1][3] <= suites.PROTEIN_TOLERANCE  # recorded RMS force at the end
    assert "Ca-RMSD" in report.write_report(str(tmp_path), "refold")
    assert (tmp_path / "refold" / "1PLW.png").exists()


# ---- report and command line -------------------------------------------------------------------------------
def test_time_to_reach_uses_running_minimum():
    history = [[0.0, 5.0, "start"], [1.0, 3.0, "a"], [2.0, 4.0, "a"], [3.0, 1.0, "a"]]
    assert report.time_to_reach(history, 3.0) == 1.0
    assert report.time_to_reach(history, 2.0) == 3.0
    assert report.time_to_reach(history, 0.5) is None


def test_command_line_runs_a_tiny_loop(tmp_path):
    assert cli.main(["run", "loop", "--n", "25", "--variants", "pure_lj", "--methods", "adam,lbfgs",
                     "--seeds", "1", "--budget", "0.3", "--out", str(tmp_path), "--option", "adam_lr=0.01"]) == 0
    runs = sorted((tmp_path / "loop" / "pure_lj_n25").glob("*.json"))
    assert [p.name for p in runs] == ["adam_seed0.json", "lbfgs_seed0.json"]
    assert json.load(open(runs[0]))["options"]["adam_lr"] == 0.01
    assert (tmp_path / "loop" / "RESULTS.md").exists()


def test_command_line_report_accepts_out_option(tmp_path):
    suites.run_loop(n=25, variants=["bond_lj"], methods=["lbfgs"], seeds=1, budget=0.3, out_dir=str(tmp_path))
    assert cli.main(["report", "loop", "--out", str(tmp_path)]) == 0
    assert "| bond_lj_n25 | lbfgs |" in (tmp_path / "loop" / "RESULTS.md").read_text()


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.split() and line.split()[0] in SUBCOMMANDS]
    assert listed == SUBCOMMANDS == list(cli.COMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_parses_its_own_arguments(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m benchmarks {name} ")
    with pytest.raises(SystemExit) as exit_:
        cli.main([name, "--no-such-option"])
    assert exit_.value.code == 2
    assert f"python -m benchmarks {name}: error: " in capsys.readouterr().err  # the module's parser, not ours


def test_benchmark_modules_run_only_through_the_package():
    """No module of benchmarks/ edits sys.path or runs as a file; every subcommand module has main(argv)."""
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        text = path.read_text()
        assert "sys.path" not in text, path.name
        assert path.name == "__main__.py" or "__main__" not in text, path.name
    for module, _ in cli.COMMANDS.values():
        assert callable(__import__(f"benchmarks.{module}", fromlist=["main"]).main)


def test_first_run_subcommand_times_a_new_process(tmp_path, capsys):
    """One fresh process (the one the benchmark starts) minimizes met-enkephalin twice with adam, Python engine."""
    out = tmp_path / "first_run.json"
    assert cli.main(["first-run", "--methods", "adam", "--engines", "python", "--repeats", "1",
                     "--json", str(out)]) == 0
    assert "| adam | python |" in capsys.readouterr().out
    [row] = json.load(open(out))
    [run] = row["runs"]
    assert (row["method"], row["engine"]) == ("adam", "python")
    assert run["first"] > 0 and run["second"] > 0 and np.isfinite(run["energy"]) and run["energy"] < 0
    assert run["dynamo"] is False  # the Python engine's Adam is core.adam, not torch.optim


def test_throughput_subcommand_sequential_path(tmp_path, capsys):
    """The plain-script baseline alone (PDBFixer, createSystem, LocalEnergyMinimizer) on one noisy 1PLW model."""
    assert cli.main(["throughput", "--models", "1", "--proteins", "1PLW", "--skip", "batch,lbfgs,relax",
                     "--workers", "1", "--out-dir", str(tmp_path)]) == 0
    assert "| sequential PDBFixer + LocalEnergyMinimizer | 1/1 |" in capsys.readouterr().out
    record = json.load(open(tmp_path / "throughput.json"))
    [result] = record["results"].values()
    assert record["models"] == 1 and result["ok"] == 1 and result["median_energy_after"] < 0
    assert (tmp_path / "models" / "1PLW_000.pdb").exists()


# ---- everyday ----------------------------------------------------------------------------------------------
def test_protein_systems_come_from_the_application_layer():
    from openmm_reparam.app.prepare import create_system

    case = proteins.load_case("1PLW", start="native")
    reference = create_system(case.topology, forcefield="amber14", solvent="obc2", constraints=None)
    assert np.isclose(_energy(case.system, case.native), _energy(reference, case.native), atol=1e-6)
    constrained = proteins.load_case("1PLW", start="native", constraints=openmm.app.HBonds)
    n_hydrogens = sum(a.element.symbol == "H" for a in case.topology.atoms())
    assert constrained.system.getNumConstraints() == n_hydrogens


def test_everyday_case_names_and_groups_resolve():
    assert everyday_cases.resolve_cases(["a"]) == ["chignolin", "trpcage", "bbl"]
    assert everyday_cases.resolve_cases(["large", "bbl_pad25", "water"]) == ["max_dna", "bbl_pad25", "tip4pew_box"]
    everything = everyday_cases.resolve_cases(None)
    assert "tiny" not in everything and len(everything) == len(set(everything)) == 14
    assert everything[:3] == ["chignolin", "trpcage", "bbl"] and everything[-2:] == ["max_dna", "bbl_pad25"]
    with pytest.raises(ValueError, match="unknown everyday case 'nope'"):
        everyday_cases.resolve_cases(["nope"])


def test_everyday_noisy_models_are_seeded_and_plans_run_lem_and_default_per_start():
    case = everyday_cases.build_case("enkephalin_noisy")
    assert case.kind == "implicit" and case.seeded_start and case.system.getNumConstraints() > 0
    native = proteins.load_case("1PLW", start="native").native
    a, b, c = case.make_start(0), case.make_start(0), case.make_start(1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert abs(np.std(a - native) - everyday_cases.NOISE_NM) < 0.004
    plan = everyday.run_plan(case, ["gnn", "lbfgs"], seeds=2)
    assert plan == [(0, "lem", 0), (0, "default", 0), (0, "gnn", 0), (0, "lbfgs", 0),
                    (1, "lem", 1), (1, "default", 1), (1, "gnn", 1), (1, "lbfgs", 1)]
    unfolded = everyday_cases.build_case("enkephalin_unfolded")
    assert not unfolded.seeded_start and np.array_equal(unfolded.make_start(0), unfolded.make_start(3))
    assert everyday.run_plan(unfolded, ["gnn", "adam"], seeds=2) == [
        (0, "lem", 0), (0, "default", 0), (0, "gnn", 0), (0, "gnn", 1), (0, "adam", 0)]


def test_everyday_water_box_has_rigid_tip4pew_with_virtual_sites():
    case = everyday_cases.water_box_case(edge_nm=2.0)
    waters = case.settings["waters"]
    system = case.system
    assert waters > 200 and system.getNumParticles() == 4 * waters
    assert sum(system.isVirtualSite(i) for i in range(system.getNumParticles())) == waters
    assert system.getNumConstraints() == 3 * waters and system.usesPeriodicBoundaryConditions()
    assert np.isfinite(_energy(system, case.make_start(0), "CPU"))


def test_everyday_suite_smoke_on_the_tiny_case(tmp_path):
    """LEM, the default and two methods on a 372-atom solvated box: records, ratios, JSON and the table."""
    assert cli.main(["run", "everyday", "--quick", "--methods", "adam,lbfgs", "--threads", "1",
                     "--out", str(tmp_path)]) == 0
    record = json.load(open(tmp_path / "everyday" / "tiny.json"))
    assert record["complete"] and record["kind"] == "explicit" and record["n_atoms"] == 372
    assert record["environment"]["command"].startswith("python -m benchmarks run everyday --quick")
    runs = {r["label"]: r for r in record["runs"]}
    assert list(runs) == ["lem", "default", "adam", "lbfgs"] and len(record["runs"]) == 4
    lem = runs["lem"]
    for label, r in runs.items():
        assert "error" not in r, r.get("error")
        assert np.isfinite(r["initial_energy"]) and np.isfinite(r["final_energy"]) and r["wall_time"] > 0
        # the same start for every run (the CPU platform sums in single precision in an order that depends on
        # its neighbour list, so the same positions give energies that agree to ~1e-7, not bit for bit)
        assert r["initial_energy"] == pytest.approx(lem["initial_energy"], rel=1e-6)
        assert r["final_energy"] < r["initial_energy"]
        assert np.isfinite(r["rms_force"]) and r["converged"] == (r["rms_force"] <= everyday.TOLERANCE)
        assert np.isclose(r["time_ratio"], r["wall_time"] / lem["wall_time"])
        assert np.isclose(r["energy_diff"], r["final_energy"] - lem["final_energy"])
        assert r["stages"] and all(s["wall_time"] >= 0 for s in r["stages"])
        # every run's force evaluations counted during its timed call, LEM's line searches included
        assert r["force_evaluations"] > 0
        assert np.isclose(r["evaluation_ratio"], r["force_evaluations"] / lem["force_evaluations"])
    assert lem["time_ratio"] == 1.0 and lem["energy_diff"] == 0.0 and lem["evaluation_ratio"] == 1.0
    # the package counts its own evaluations per stage; the Context saw at least those
    assert runs["adam"]["force_evaluations"] >= sum(s["energy_evaluations"] or 0 for s in runs["adam"]["stages"])
    assert runs["default"]["options_given"] == {} and runs["adam"]["options_given"]["never_worse"] is False
    assert runs["adam"]["method"] == "adam" and runs["lbfgs"]["stages"][0]["name"] == "lbfgs"
    text = (tmp_path / "everyday" / "RESULTS.md").read_text()
    for label in ("lem", f"default ({runs['default']['method']})", "adam", "lbfgs"):
        assert f"| tiny | 372 | {label} | 1 |" in text
    assert "| force evals | evals/LEM |" in text
    assert f"| {lem['force_evaluations']} | 1.00 |" in text
    assert "Goals for the default" in text and "openmm " in text
    assert report.write_everyday_report(str(tmp_path)) == text


@pytest.mark.parametrize("methods", ["", ",", "none"])
def test_everyday_with_no_methods_runs_lem_and_the_default_only(tmp_path, methods):
    assert cli.main(["run", "everyday", "--quick", "--methods", methods, "--threads", "1",
                     "--out", str(tmp_path)]) == 0
    record = json.load(open(tmp_path / "everyday" / "tiny.json"))
    assert [r["label"] for r in record["runs"]] == ["lem", "default"]
    assert all("error" not in r and r["final_energy"] < r["initial_energy"] for r in record["runs"])


def test_device_parity_table_goes_to_the_end_of_the_device_section(tmp_path):
    """The device-parity table: one row per (case, method) with the relative gaps, inserted at the end of the
    section anchored ``device``, before the next section's anchor line."""
    from benchmarks import device_parity
    records = [{"case": "free", "method": "adam", "device": (-805.0, "opencl", True, 1.0),
                "host": (-805.0 + 8.05e-6, "cpp", True, 1.0), "cpu": (-804.0, "cpp", True, 1.0)}]
    text = device_parity.table(records, "OpenCL", "double", "python -m benchmarks device-parity")
    assert "| free | adam | -805.000 | opencl | -805.000 | -804.000 | 1.0e-08 | 1.2e-03 | yes |" in text
    results = tmp_path / "RESULTS.md"
    results.write_text('# R\n\n<a id="device"></a>\n## Device check — *the GPU check has not run*\n\ntext\n\n'
                       '<a id="device-opencl"></a>\n### OpenCL\n\nrows\n\n<a id="next"></a>\n## Next\n\nmore\n')
    device_parity.append_to_results(str(results), text)
    content = results.read_text()
    assert content.index("rows") < content.index("| free | adam |") < content.index('<a id="next"></a>\n## Next')
    assert content.startswith('# R\n\n<a id="device"></a>\n## Device check') and content.endswith("more\n")


def test_device_timing_rows_go_into_one_table_in_the_device_section(tmp_path):
    """The GPU timing: its header and then each case's row land at the end of the device section as one table,
    and the section's heading says the GPU check ran."""
    from benchmarks import device_timing
    results = tmp_path / "RESULTS.md"
    results.write_text('# R\n\n<a id="device"></a>\n## Device check — *the GPU check has not run*\n\ntext\n\n'
                       '<a id="startup"></a>\n## Start-up time\n\nto be filled\n')
    device_timing.append_results(str(results), "### Run\n\n| case |\n|---|\n| chignolin |")
    device_timing.append_results(str(results), "| max_dna |", new_paragraph=False)
    content = results.read_text()
    assert "## Device check — *the GPU check ran (see its runs below)*" in content
    assert "text\n\n### Run\n\n| case |\n|---|\n| chignolin |\n| max_dna |\n\n<a id=\"startup\"></a>\n## Start-up" in content


# ---- hard starts ---------------------------------------------------------------------------------------------
def test_the_evaluation_counter_counts_without_changing_lems_path():
    """LEM on the Reference platform (deterministic) with and without the counter: the same final positions to
    the bit, and every evaluation counted (more than one per reported iteration: the line searches)."""
    from benchmarks.evaluations import EvaluationCounter
    from openmm_reparam.testing import load_peptide, perturbed

    _, system, positions = load_peptide("1plw")
    start = perturbed(positions, 0.02)
    plain = openmm.XmlSerializer.clone(system)
    counter = EvaluationCounter(system)
    finals, iterations = [], []
    for s in (plain, system):
        context = openmm.Context(s, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
        context.setPositions(start)

        class Count(openmm.MinimizationReporter):
            calls = 0

            def report(self, iteration, x, grad, args):
                Count.calls += 1
                return False

        before = counter.calls
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 0, Count())
        finals.append(context.getState(getPositions=True).getPositions(asNumpy=True).value_in_unit(unit.nanometer))
        iterations.append(Count.calls)
    assert np.array_equal(finals[0], finals[1])
    assert counter.calls - before > iterations[1] > 0


def test_hard_cases_resolve_and_the_plan_runs_lem_first():
    from benchmarks import hard, hard_cases

    assert hard_cases.resolve_cases(["explicit", "far_atom"]) == ["through_water", "far_atom"]
    assert hard_cases.resolve_cases(None) == list(hard_cases.CASES)
    with pytest.raises(ValueError, match="unknown hard case 'nope'"):
        hard_cases.resolve_cases(["nope"])
    assert hard.plan_labels("far_atom", ["python", "opencl"], ["dimer"]) == ["lem", "default/python"]
    assert hard.plan_labels("dimer", hard.ENGINES, ["dimer"], counter_check=True) == [
        "lem", "lem_uncounted", "default/python", "default/cpp", "default/opencl"]


def test_hard_suite_smoke_on_the_smallest_case(tmp_path):
    """LEM and the default on both CPU engines from the far-atom start: counted evaluations, ratios, goals, JSON
    and the tables."""
    from benchmarks import hard, hard_cases

    if not os.path.exists(everyday_cases.pdb_path("2JOF")):
        pytest.skip("the deposited PDB entry 2JOF is not here")
    assert cli.main(["run", "hard", "--cases", hard_cases.SMALLEST, "--engines", "python,cpp", "--threads", "1",
                     "--out", str(tmp_path)]) == 0
    record = json.load(open(tmp_path / "hard" / f"{hard_cases.SMALLEST}.json"))
    assert record["complete"] and record["n_atoms"] == 284 and record["benchmark"] == "hard"
    runs = {r["label"]: r for r in record["runs"]}
    assert list(runs) == ["lem", "default/python", "default/cpp"]
    lem = runs["lem"]
    assert lem["start_max_force"] > 1e5 and lem["initial_energy"] > 1e6  # a severe start
    for label, r in runs.items():
        assert "error" not in r, r.get("error")
        assert np.isfinite(r["final_energy"]) and r["final_energy"] < -2000 and r["wall_time"] > 0
        assert r["converged"] == (r["rms_force"] <= everyday.TOLERANCE)
        assert r["force_evaluations"] > 10 and np.isclose(r["time_ratio"], r["wall_time"] / lem["wall_time"])
    assert runs["default/python"]["engine"] == "python" and runs["default/cpp"]["engine"] == "cpp"
    assert np.isclose(runs["default/cpp"]["evaluation_ratio"],
                      runs["default/cpp"]["force_evaluations"] / lem["force_evaluations"])
    rows = hard.goal_rows([record])
    assert [row["label"] for row in rows] == ["default/python", "default/cpp"]
    text = (tmp_path / "hard" / "RESULTS.md").read_text()
    assert f"| {hard_cases.SMALLEST} | 284 | default/cpp (precon) | 1 |" in text and "force evals" in text
    assert "Goals (finite, converged" in text and report.write_report(str(tmp_path), "hard") == text


def test_every_benchmark_reads_the_pdb_directory_from_one_place(tmp_path):
    """``OPENMM_REPARAM_PDB_DIR`` is read in benchmarks/pdb_source.py alone, and a directory it names is the one
    the protein starts, the overhead benchmark and the everyday/hard/external cases read entries from."""
    root = pathlib.Path(__file__).resolve().parents[1]
    readers = [p.name for p in (root / "benchmarks").glob("*.py") if "OPENMM_REPARAM_PDB_DIR" in p.read_text()]
    assert readers == ["pdb_source.py"]
    code = ("import benchmarks.proteins as p, benchmarks.overhead as o, benchmarks.everyday_cases as e; "
            "print(p.PDB_SOURCE_DIR); print(o.PDB_SOURCE_DIR); print(e.pdb_path('9XYZ'))")
    env = dict(os.environ, OPENMM_REPARAM_PDB_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(tmp_path), str(tmp_path), str(tmp_path / "9XYZ.pdb")]


def test_default_runs_repeat_exactly_and_count_evaluations(capsys):
    """Two runs of the default on one perturbed external start: each a JSON line with its force evaluations and
    convergence, and the two lines identical but for the time (the Context repeats exactly)."""
    assert cli.main(["default-runs", "--cases", "TolueneVacuum:0,TolueneVacuum:0"]) == 0
    first, second = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert first == {**second, "s": first["s"]}
    assert (first["case"], first["start"], first["method"], first["converged"]) == ("TolueneVacuum", 0, "lbfgs", True)
    assert first["evals"] > 10 and first["rms"] <= 10.0 and np.isfinite(first["E"])
    assert first["stages"][-1][1] > 0  # the stage that ran counted its evaluations
