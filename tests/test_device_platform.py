"""OpenMM's L-BFGS crashes (segfault) on OpenCL with a CPU runtime (pocl): no path of ours calls it there.

The OpenCL tests need an OpenCL runtime (in CI: Debian's pocl-opencl-icd) and skip cleanly without one. They
would kill the test process if a guard were missing, so each guarded call also runs in a subprocess once."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import openmm
import pytest

import openmm_reparam
from openmm_reparam.core.platforms import (UnsupportedPlatformError, fastest_safe_platform, is_cpu_opencl,
                                           openmm_lbfgs_blocker)

from conftest import energy_of, load_peptide, make_context, perturbed, positions_of


def opencl_available() -> bool:
    try:
        openmm.Platform.getPlatformByName("OpenCL")
    except openmm.OpenMMException:
        return False
    system = openmm.System()
    system.addParticle(1.0)
    try:
        openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("OpenCL"))
    except openmm.OpenMMException:
        return False
    return True


OPENCL = opencl_available()
needs_opencl = pytest.mark.skipif(not OPENCL, reason="no OpenCL runtime (install ocl-icd-libopencl1 pocl-opencl-icd)")


def test_cpu_opencl_rule_by_names():
    assert is_cpu_opencl("OpenCL", "Portable Computing Language", "pthread-skylake-avx512-Intel(R) Xeon(R)")
    assert is_cpu_opencl("OpenCL", "Intel(R) OpenCL", "Intel(R) Core(TM) i7 CPU @ 2.6GHz")
    assert not is_cpu_opencl("OpenCL", "NVIDIA CUDA", "NVIDIA H200")
    assert not is_cpu_opencl("OpenCL", "AMD Accelerated Parallel Processing", "gfx90a:sramecc+:xnack-")
    assert not is_cpu_opencl("CUDA", "Portable Computing Language", "pthread-x")


def test_cpu_platform_runs_openmm_lbfgs(plw):
    _, system, positions = plw
    assert openmm_lbfgs_blocker(make_context(system, positions, "CPU")) is None
    assert openmm_lbfgs_blocker(make_context(system, positions, "Reference")) is None


@pytest.fixture(scope="module")
def constrained():
    _, system, positions = load_peptide("1plw", constraints=openmm.app.HBonds)
    return system, perturbed(positions, 0.02)


def cpu_opencl_context(system, positions):
    context = make_context(system, positions, "OpenCL")
    if openmm_lbfgs_blocker(context) is None:
        pytest.skip("OpenCL runs on a device where OpenMM's L-BFGS works")
    return context


@needs_opencl
@pytest.mark.parametrize("method", ["auto", "precon", "adam", "fire"])
def test_default_and_methods_converge_on_cpu_opencl(constrained, method):
    system, start = constrained
    context = cpu_opencl_context(system, start)
    result = openmm_reparam.minimize(context, method=method)
    assert result.converged and result.final_energy < result.initial_energy
    if "declash" in [stage.name for stage in result.stages]:  # precon's declash is the projected L-BFGS there
        assert result.options["declash_by"] == "projected" and result.stage("declash").iterations > 0
    reference = make_context(system, start, "CPU")
    openmm.LocalEnergyMinimizer.minimize(reference, 10.0, 0)
    assert result.final_energy < energy_of(reference) + 0.05 * abs(energy_of(reference))


@needs_opencl
def test_default_on_a_small_molecule_on_cpu_opencl_uses_the_projected_lbfgs():
    """auto picks lbfgs for 22 atoms; where OpenMM's L-BFGS cannot run, its polish (the projected L-BFGS) does
    the whole minimization, converged and no higher than OpenMM's on the CPU platform."""
    testsystems = pytest.importorskip("openmmtools.testsystems")
    molecule = testsystems.AlanineDipeptideVacuum()
    x = molecule.positions.value_in_unit(openmm.unit.nanometer)
    start = x + np.random.default_rng(0).normal(0.0, 0.01, x.shape)
    context = cpu_opencl_context(molecule.system, start)
    result = openmm_reparam.minimize(context)
    assert result.method == "lbfgs" and [s.name for s in result.stages] == ["polish"] and result.converged
    reference = make_context(molecule.system, start, "CPU")
    openmm.LocalEnergyMinimizer.minimize(reference, 10.0, 0)
    assert result.final_energy <= energy_of(reference) + 1.0


@needs_opencl
@pytest.mark.parametrize("options", [{"method": "lbfgs"}, {"method": "adam", "never_worse": True}])
def test_openmm_lbfgs_paths_raise_clearly_on_cpu_opencl(constrained, options):
    system, start = constrained
    context = cpu_opencl_context(system, start)
    before = positions_of(context)
    with pytest.raises(UnsupportedPlatformError, match="OpenMM's L-BFGS"):
        openmm_reparam.minimize(context, **options)
    np.testing.assert_allclose(positions_of(context), before, atol=1e-6)


@needs_opencl
def test_no_segfault_in_a_fresh_process():
    """The whole default run, in its own process: a crash shows as a negative return code, not a dead suite."""
    code = ("import openmm, openmm_reparam\n"
            "from openmm_reparam.testing import load_peptide, make_context, perturbed\n"
            "_, s, p = load_peptide('1plw')\n"
            "c = make_context(s, perturbed(p, 0.02), 'OpenCL')\n"
            "r = openmm_reparam.minimize(c)\n"
            "for m in ('lbfgs',):\n"
            "    try:\n        openmm_reparam.minimize(c, method=m)\n"
            "    except openmm_reparam.core.platforms.UnsupportedPlatformError:\n        pass\n"
            "print('ok', r.converged)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok True" in done.stdout


@needs_opencl
def test_default_platform_passes_over_cpu_opencl():
    platform, note = fastest_safe_platform()
    probe = make_context(load_peptide("1plw")[1], load_peptide("1plw")[2], "OpenCL")
    if openmm_lbfgs_blocker(probe) is None:
        assert note == ""
    else:
        assert platform.getName() == "CPU" and "OpenCL" in note


@needs_opencl
def test_cli_without_platform_picks_cpu_over_cpu_opencl(tmp_path):
    from openmm_reparam.app.pipeline import make_platform
    platform, _ = make_platform(None)
    probe = make_context(load_peptide("1plw")[1], load_peptide("1plw")[2], "OpenCL")
    if openmm_lbfgs_blocker(probe) is not None:
        assert platform is not None and platform.getName() == "CPU"


@needs_opencl
def test_cli_run_without_platform_does_not_crash(tmp_path):
    """`--method lbfgs` with no --platform: OpenMM's L-BFGS on whatever platform the CLI picks."""
    import os
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "data", "5AWL.pdb")
    done = subprocess.run([sys.executable, "-m", "openmm_reparam", "minimize", example, "-o",
                           str(tmp_path / "out.pdb"), "--method", "lbfgs", "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out.pdb").exists()
