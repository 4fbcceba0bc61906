"""openmm_reparam.patch()/unpatch() and ``python -m openmm_reparam run`` on real OpenMM Simulations and scripts."""
import io
import os
import re
import subprocess
import sys

import numpy as np
import openmm
import pytest
from openmm import app, unit

import openmm_reparam
from openmm_reparam.testing import prepared_pdb
from openmm_reparam.app.patch import ENV_VAR, PatchError, is_patched, parse_options

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
PREPARED = prepared_pdb("1plw")
KJ = unit.kilojoule_per_mole
ORIGINAL_MINIMIZE_ENERGY = app.Simulation.__dict__["minimizeEnergy"]
ORIGINAL_LEM = openmm.LocalEnergyMinimizer.__dict__["minimize"]


@pytest.fixture(autouse=True)
def no_patch_left(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    yield
    openmm_reparam.unpatch()
    assert app.Simulation.__dict__["minimizeEnergy"] is ORIGINAL_MINIMIZE_ENERGY
    assert openmm.LocalEnergyMinimizer.__dict__["minimize"] is ORIGINAL_LEM


def simulation():
    """Met-enkephalin, amber14 + OBC2, on the Reference platform: a small ordinary Simulation."""
    pdb = app.PDBFile(PREPARED)
    forcefield = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    system = forcefield.createSystem(pdb.topology, nonbondedMethod=app.NoCutoff, constraints=app.HBonds)
    integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, 0.002 * unit.picoseconds)
    sim = app.Simulation(pdb.topology, system, integrator, openmm.Platform.getPlatformByName("Reference"))
    sim.context.setPositions(pdb.positions)
    return sim


def energy(sim):
    return sim.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(KJ)


def test_the_context_manager_routes_minimize_energy_to_ours_and_restores_openmm():
    plain = simulation()
    plain.minimizeEnergy()
    ours, stream = simulation(), io.StringIO()
    start = energy(ours)
    with openmm_reparam.patch(method="precon", stream=stream) as handle:
        assert is_patched() and app.Simulation.minimizeEnergy is not ORIGINAL_MINIMIZE_ENERGY
        ours.minimizeEnergy()
    assert not is_patched()
    [call] = handle.calls
    assert call["caller"] == "Simulation.minimizeEnergy" and call["method"] == "precon"
    assert call["initial_energy"] == pytest.approx(start) and call["final_energy"] == pytest.approx(energy(ours))
    assert call["final_energy"] <= energy(plain) + 1e-6 * abs(energy(plain))
    line = stream.getvalue().strip()
    assert line.startswith("openmm_reparam: Simulation.minimizeEnergy -> precon: ") and "\n" not in line
    again = simulation()
    again.minimizeEnergy()  # unpatched again: OpenMM's L-BFGS, no summary, same result as the plain run
    assert handle.calls == [call] and energy(again) == pytest.approx(energy(plain), rel=1e-9)


def test_process_wide_patch_covers_local_energy_minimizer_with_its_arguments_until_unpatch():
    stream = io.StringIO()
    handle = openmm_reparam.patch(method="lbfgs", stream=stream)  # lbfgs: ours calls OpenMM's L-BFGS inside
    sim = simulation()
    openmm.LocalEnergyMinimizer.minimize(sim.context, 1.0, 7)
    [call] = handle.calls
    assert call["caller"] == "LocalEnergyMinimizer.minimize" and call["method"] == "lbfgs"
    assert not call["converged"] and call["rms_force"] > 1.0  # stopped by maxIterations=7 short of 1 kJ/mol/nm
    assert call["final_energy"] < call["initial_energy"]
    openmm_reparam.unpatch()
    assert not is_patched() and not handle.active
    openmm.LocalEnergyMinimizer.minimize(sim.context)
    assert len(handle.calls) == 1 and stream.getvalue().count("openmm_reparam:") == 1


def test_patches_nest_and_the_innermost_decides():
    outer = openmm_reparam.patch(method="lbfgs", quiet=True)
    with openmm_reparam.patch(method="precon", quiet=True) as inner:
        simulation().minimizeEnergy(maxIterations=20)
    simulation().minimizeEnergy(maxIterations=20)
    assert [c["method"] for c in inner.calls] == ["precon"] and [c["method"] for c in outer.calls] == ["lbfgs"]
    assert is_patched()
    outer.close()
    assert not is_patched()


def test_options_come_from_the_environment_and_arguments_win(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "method=lbfgs, never_worse=1,precon_memory=5")
    with openmm_reparam.patch(method="precon", quiet=True) as handle:
        assert handle.options == {"method": "precon", "never_worse": 1, "precon_memory": 5}
    assert parse_options("a=true,b=none,c=0.5,d=text") == {"a": True, "b": None, "c": 0.5, "d": "text"}


@pytest.mark.parametrize("environment, options, message", [
    ("", {"method": "nope"}, "method must be one of"),
    ("", {"learning_rate": 1.0}, "unknown minimizer option"),
    ("method=lbfgs,never_worse", {}, "expected KEY=VALUE"),
])
def test_bad_options_are_an_error_and_patch_nothing(monkeypatch, environment, options, message):
    monkeypatch.setenv(ENV_VAR, environment)
    with pytest.raises(PatchError, match=message):
        openmm_reparam.patch(**options)
    assert not is_patched() and app.Simulation.__dict__["minimizeEnergy"] is ORIGINAL_MINIMIZE_ENERGY


# --- the example scripts, as subprocesses -------------------------------------------------------------------

def run_python(*args, cwd, env=None):
    environment = {key: value for key, value in os.environ.items() if key != ENV_VAR}
    environment.update(PYTHONPATH=ROOT, **(env or {}))
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=environment)


def minimized_energy(stdout):
    return float(re.search(r"Minimized energy: (-?[\d.]+) kJ/mol", stdout).group(1))


def check_md_carried_on(directory, steps):
    rows = [line.split("\t") for line in open(directory / "log.txt") if not line.startswith("#")]
    assert [int(row[1]) for row in rows] == list(range(steps // 10, steps + 1, steps // 10))
    assert all(np.isfinite(float(row[2])) and 100 < float(row[3]) < 500 for row in rows)  # energy, temperature
    assert (directory / "trajectory.dcd").stat().st_size > 0


@pytest.fixture(scope="module")
def plain_script(tmp_path_factory):
    """The OpenMM-Setup-shaped example run as it is (OpenMM's minimizer)."""
    directory = tmp_path_factory.mktemp("plain")
    completed = run_python(os.path.join(EXAMPLES, "openmm_setup_implicit.py"), PREPARED, 100, cwd=directory)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "openmm_reparam" not in completed.stdout + completed.stderr
    return minimized_energy(completed.stdout)


def test_an_unmodified_script_runs_under_python_m_openmm_reparam_run(plain_script, tmp_path):
    script = os.path.join(EXAMPLES, "openmm_setup_implicit.py")
    assert "openmm_reparam" not in "".join(line for line in open(script) if not line.startswith("#"))
    completed = run_python("-m", "openmm_reparam", "run", "--option", "never_worse=true", script, PREPARED, 100,
                           cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-2000:]
    [summary] = [line for line in completed.stderr.splitlines() if line.startswith("openmm_reparam:")]
    assert summary.startswith("openmm_reparam: Simulation.minimizeEnergy -> precon: ")
    final = float(re.search(r"-> (-?[\d.]+) kJ/mol", summary).group(1))
    assert minimized_energy(completed.stdout) == pytest.approx(final, abs=0.05)
    assert minimized_energy(completed.stdout) <= plain_script + 1e-6 * abs(plain_script)
    check_md_carried_on(tmp_path, 100)


def test_patch_inside_a_script_does_the_same(plain_script, tmp_path):
    completed = run_python(os.path.join(EXAMPLES, "openmm_setup_patched.py"), PREPARED, 100, cwd=tmp_path,
                           env={ENV_VAR: "never_worse=1"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stderr.count("openmm_reparam: Simulation.minimizeEnergy -> ") == 1
    assert minimized_energy(completed.stdout) <= plain_script + 1e-6 * abs(plain_script)
    check_md_carried_on(tmp_path, 100)


def test_run_passes_the_exit_status_and_refuses_bad_input(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint(sys.argv)\nsys.exit(3)\n")
    completed = run_python("-m", "openmm_reparam", "run", script, "--flag", "x", cwd=tmp_path)
    assert completed.returncode == 3 and completed.stdout.strip() == repr([str(script), "--flag", "x"])
    completed = run_python("-m", "openmm_reparam", "run", tmp_path / "missing.py", cwd=tmp_path)
    assert completed.returncode == 2 and "no such script" in completed.stderr
    completed = run_python("-m", "openmm_reparam", "run", "--method", "nope", script, cwd=tmp_path)
    assert completed.returncode == 2 and "method must be one of" in completed.stderr and not completed.stdout


def test_model_building_minimizations_stay_with_openmm():
    """PDBFixer and Modeller relax the hydrogens they add with OpenMM's minimizer: those calls are not the script's
    minimizations and are left alone; the script's own calls, direct or through a Simulation, are ours."""
    from pdbfixer import PDBFixer
    reference = openmm.Platform.getPlatformByName("Reference")
    forcefield = app.ForceField("amber14-all.xml", "implicit/obc2.xml")
    with openmm_reparam.patch(quiet=True) as handle:
        fixer = PDBFixer(filename=os.path.join(ROOT, "tests", "data", "1PLW_model1.pdb"), platform=reference)
        fixer.removeHeterogens(False)
        fixer.findMissingResidues()
        fixer.findMissingAtoms()
        fixer.addMissingAtoms()
        fixer.addMissingHydrogens(7.0, forcefield=forcefield)   # minimizes the new hydrogens (Modeller)
        modeller = app.Modeller(fixer.topology, fixer.positions)
        modeller.addHydrogens(forcefield, platform=reference)    # and again
        assert handle.calls == []
        system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff)
        sim = app.Simulation(modeller.topology, system, openmm.VerletIntegrator(0.001), reference)
        sim.context.setPositions(modeller.positions)
        openmm.LocalEnergyMinimizer.minimize(sim.context, 10.0, 0)
        sim.minimizeEnergy()
    assert [call["caller"] for call in handle.calls] == ["LocalEnergyMinimizer.minimize", "Simulation.minimizeEnergy"]
