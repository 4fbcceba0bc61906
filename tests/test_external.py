"""The external benchmark (openmmtools test systems, rough starts, ASE): case enumeration, starts, the ASE
calculator, and the suite end to end on three tiny systems. Skipped where openmmtools (or ase) is missing."""
import json
import math
import os

import numpy as np
import pytest

pytest.importorskip("openmmtools")

import openmm  # noqa: E402
from openmm import unit  # noqa: E402

from benchmarks import __main__ as cli  # noqa: E402
from benchmarks import everyday, external, external_cases, external_report  # noqa: E402


def test_every_testsystem_class_is_a_case_in_a_group():
    classes = external_cases.testsystem_classes()
    assert "TestSystem" not in classes and "DHFRExplicit" in classes and len(classes) > 50
    cases = external_cases.all_cases()
    assert set(classes) <= set(cases) and {"IdealGasNoForces", "trpcage_cb", "bbl_loop"} <= set(cases)
    assert cases[-1] == "DHFRExplicit"  # the large group runs last
    assert external_cases.resolve_cases(["tiny", "rough", "HarmonicOscillator"]) == \
        external_cases.TINY + list(external_cases.ROUGH)
    assert "TolueneImplicitOBC2" in external_cases.resolve_cases(["implicit"])
    with pytest.raises(ValueError, match="unknown external case 'nope'"):
        external_cases.resolve_cases(["nope"])


def test_perturbed_starts_are_seeded_and_leave_virtual_sites_and_massless_particles():
    case = external_cases.build_case("FourSiteWaterBox")
    own = case.make_start("own")
    a, b = case.make_start(0), case.make_start(0)
    assert np.array_equal(a, b) and not np.array_equal(a, case.make_start(1))
    moved = np.any(a != own, axis=1)
    system = case.system
    virtual = np.array([system.isVirtualSite(i) for i in range(system.getNumParticles())])
    assert virtual.any() and not moved[virtual].any() and moved[~virtual].all()
    assert abs(np.std(a[~virtual] - own[~virtual]) - external_cases.NOISE_NM) < 0.002
    plan = external.run_plan(case, ["adam", "ase"], seeds=2)
    assert [p[0] for p in plan[::3]] == ["own", 0, 1] and {p[1] for p in plan} == {"lem", "default", "adam"}


def test_idealgas_without_forces_is_a_case():
    case = external_cases.build_case("IdealGasNoForces")
    assert case.system.getNumForces() == 0 and case.group == "toy" and case.settings["forces"] == []


def test_side_chains_cut_to_cb_and_deleted_residues_are_rebuilt():
    path = everyday_cases_pdb("2JOF")
    if not os.path.exists(path):
        pytest.skip(f"{path} (the deposited entry) is not here")
    lines = external_cases.model_one(open(path).read())
    assert sum(line.startswith("ATOM") for line in lines) == 284  # model 1 of 28
    cut = external_cases.cut_side_chains(lines)
    names = {line[12:16].strip() for line in cut if line.startswith("ATOM")}
    assert {"N", "CA", "C", "O", "CB"} <= names <= {"N", "CA", "C", "O", "CB", "OXT"}
    short = external_cases.delete_residues(lines, 8, 4)
    residues = {line[22:26] for line in short if line.startswith("ATOM")}
    assert len(residues) == len({line[22:26] for line in lines if line.startswith("ATOM")}) - 4
    with pytest.raises(ValueError, match="not inside the chain"):
        external_cases.delete_residues(lines, 0, 2)


def everyday_cases_pdb(pdb_id):
    from benchmarks.everyday_cases import pdb_path

    return pdb_path(pdb_id)


def test_ase_calculator_converts_units_and_ase_runs_to_our_rms_criterion():
    pytest.importorskip("ase")
    from benchmarks import ase_runs
    from openmm_reparam.core.bridge import EnergyBridge

    case = external_cases.build_case("TolueneImplicit")
    context = openmm.Context(case.system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"),
                             {"Threads": "1"})
    context.setPositions(case.make_start(0))
    context.applyConstraints(1e-8)
    state = context.getState(getEnergy=True, getForces=True)
    atoms = ase_runs.make_atoms(context, case.topology)
    atoms.calc = ase_runs._calculator_class()(context)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    assert atoms.get_potential_energy() == pytest.approx(energy / 96.48533212, rel=1e-6)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    raw = atoms.get_forces(apply_constraint=False)
    assert np.allclose(raw * 964.8533212, forces, rtol=1e-5, atol=1e-3)
    assert atoms.get_chemical_symbols().count("C") == 7
    for name in ("FIRE", "LBFGS"):
        context.setPositions(case.make_start(0))
        result = ase_runs.run_ase(context, name, 10.0, case.topology)
        rms, _ = EnergyBridge(context).force_norms()
        assert result["converged"] and result["rms_force"] == pytest.approx(rms) and rms <= 10.0
        assert result["stages"][0]["stop_reason"] == "tolerance" and result["stages"][0]["energy_evaluations"] > 1
    with pytest.raises(NotImplementedError, match="only FixAtoms"):
        ase_runs.run_ase(context, "PreconLBFGS", 10.0, case.topology)


def test_external_suite_smoke_on_three_tiny_systems(tmp_path):
    """LEM, the default and two methods on HarmonicOscillator, LennardJonesCluster, AlanineDipeptideVacuum from
    their own positions and one perturbed start: JSON rows with finite energies, ratios, converged flags; table."""
    assert cli.main(["run", "external", "--cases", "tiny", "--methods", "adam,lbfgs", "--seeds", "1",
                     "--threads", "1", "--out", str(tmp_path)]) == 0
    for name in external_cases.TINY:
        record = json.load(open(tmp_path / "external" / f"{name}.json"))
        assert record["complete"] and record["benchmark"] == "external" and record["case"] == name
        assert record["starts"] == ["own", 0] and record["environment"]["openmmtools"]
        runs = record["runs"]
        assert [(r["start_seed"], r["label"]) for r in runs] == [
            (start, label) for start in ("own", 0) for label in ("lem", "default", "adam", "lbfgs")]
        for r in runs:
            assert "error" not in r, r.get("error")
            assert math.isfinite(r["initial_energy"]) and math.isfinite(r["final_energy"]) and r["wall_time"] > 0
            assert math.isfinite(r["time_ratio"]) and math.isfinite(r["energy_diff"])
            assert r["converged"] == (r["rms_force"] <= everyday.TOLERANCE)
            assert r["final_energy"] <= r["initial_energy"] + 1e-6 * max(1.0, abs(r["initial_energy"]))
            assert r["force_evaluations"] >= 1  # even from a minimum, LEM and ours evaluate the forces once
        assert all(r["converged"] for r in runs if r["label"] == "lem")
    text = (tmp_path / "external" / "RESULTS.md").read_text()
    assert "| HarmonicOscillator | toy | own | 1 | 0 |" in text
    assert "| AlanineDipeptideVacuum | vacuum | noise 0 |" in text
    assert "Goals for the default" in text and "Default meets every per-case goal on" in text
    assert "| LEM evals | default evals | allowed evals |" in text and "Median default evaluations/LEM" in text
    assert external_report.write_report(str(tmp_path)) == text


def test_the_evaluation_goal_halves_where_lem_needs_many():
    """At most LEM's evaluations; at most half of them where LEM needs more than 300; no verdict uncounted."""
    from benchmarks.evaluations import evaluations_allowed, evaluations_ok

    assert evaluations_allowed(300) == 300 and evaluations_allowed(301) == 150.5
    assert evaluations_ok({"force_evaluations": 300}, {"force_evaluations": 300}) is True
    assert evaluations_ok({"force_evaluations": 151}, {"force_evaluations": 301}) is False
    assert evaluations_ok({"force_evaluations": 150}, {"force_evaluations": 301}) is True
    assert evaluations_ok({}, {"force_evaluations": 301}) is None


def test_compare_runs_variants_beside_lem_on_a_named_case():
    from benchmarks import compare

    assert compare.parse_variant("precon@precon_matrix=finite-difference+declash_steps=5+fine_lr=1e-3") == (
        "precon", {"precon_matrix": "finite-difference", "declash_steps": 5, "fine_lr": 1e-3})
    row = compare.compare_case("LennardJonesCluster", 0, ["lbfgs", "precon@declash_by=openmm"], threads=1)
    assert row["atoms"] == 27 and row["lem"][0] > 0 and row["lem"][1] >= 0 and row["max_force"] > 0
    assert row["lem"][3] >= row["lem"][1]  # LEM's evaluations: at least one per iteration (its line searches)
    for variant in ("lbfgs", "precon@declash_by=openmm"):
        ratio, difference, converged, method, stages, evaluations = row[variant]
        assert converged and method == variant.split("@")[0] and ratio > 0 and stages and evaluations > 0
        assert difference <= 1.0  # a 27-atom cluster from its own lattice: the same minimum as LEM's
