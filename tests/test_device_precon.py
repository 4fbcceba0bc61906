"""The device precon stage (plugin_cpp/platforms/common CommonDevicePreconKernel, runDevicePreconStage) on real
OpenCL Contexts (OpenCL, or OPENMM_REPARAM_TEST_PLATFORM: see test_device_stages): the host PreconStage's steps to
rounding on the same kind of Context (a Laplacian P and P = mu I; free, HBonds, a TIP4P-Ew box), rebuilds of P
(a new device stage per P, one evaluation more each), fixed particles, methods precon and auto's lbfgs on the
device with ``result.engine``, and the host stage where a reporter is given or engine="cpp". Skips
without an OpenCL runtime or without the plugin's OpenCL library."""
from __future__ import annotations

import dataclasses
import time

import numpy as np
import openmm
import pytest
import scipy.sparse

import openmm_reparam
from openmm_reparam.core.bridge import EnergyBridge
from openmm_reparam.core.errors import NonFiniteEnergyError
from openmm_reparam.core.platforms import openmm_lbfgs_blocker
from openmm_reparam.engines import compiled
from openmm_reparam.engines.device import device_precon_available
from openmm_reparam.engines.precon import Preconditioner, precon_setup
from openmm_reparam.engines.precon_compiled import (compiled_precon_stage, cpp_precon_matrix, cpp_precon_settings,
                                                    iteration_settings)
from openmm_reparam.methods.precon import PreconOptions
from openmm_reparam.run.recorder import RunRecorder

from conftest import energy_of, make_context, positions_of
from test_device_stages import LABEL, _device_ready, assert_constraints_hold, opencl_context
from test_device_stages import device_cases, keep_the_locale  # noqa: F401  (fixtures; autouse)
from test_precon_compiled import STEPPED_WELL_START, Collect, singular_pair, stepped_well

pytestmark = pytest.mark.skipif(not _device_ready(), reason="no OpenCL runtime or no OpenCL device library built")
TOLERANCE = 10.0


def stage_settings(**overrides):
    """Method precon's stage settings (PreconOptions' defaults), with overrides."""
    return dataclasses.replace(PreconOptions().stage_settings(None), **overrides)


def both_stages(system, start, settings, precision="double"):
    """(device outcome, host outcome, device Context, host Context): one stage each from ``start``, on two
    Contexts of the same kind, with the same P (built at ``start``)."""
    device, host = opencl_context(system, start, precision), opencl_context(system, start, precision)
    precon, _ = precon_setup(EnergyBridge(device), settings)
    cpp = cpp_precon_settings(iteration_settings(settings, "precon", settings.max_steps), time.perf_counter())
    matrix, coupled = cpp_precon_matrix(precon), np.flatnonzero(precon.coupled).astype(np.float64)
    first = compiled.plugin().runDevicePreconStage(device, cpp, matrix, coupled, TOLERANCE)
    stage = compiled.plugin().PreconStage(host, cpp, matrix, coupled, TOLERANCE)
    second = stage.run(settings.max_steps, False, None)
    stage.leaveContext()
    return first, second, device, host


@pytest.mark.parametrize("case,laplacian", [("free", True), ("hbonds", True), ("free", False), ("hbonds", False),
                                            ("tip4pew", False)])
def test_steps_match_the_host_stage(device_cases, case, laplacian):
    """Double precision, one P (no rebuild): the first 40 steps' energies within 1e-6 relative of the host stage's
    (measured 4e-12 to 3e-11 in all five device_cases), the final energies within 1e-3 (measured 1e-6 to 2e-4, after
    135-631 steps, the counts within 3% of the host's), both converged; the Context is left at the final
    iterate, on the constraints (measured 5e-6 relative with HBonds, 3e-8 for the rigid waters)."""
    system, start = device_cases[case]
    settings = stage_settings(laplacian=laplacian, rebuild_distance=np.inf, max_steps=2000)
    first, second, device, host = both_stages(system, start, settings)
    assert first.stopReason == second.stopReason == "converged"
    assert first.iterations > 40 and second.iterations > 40
    np.testing.assert_allclose(first._energies()[:40], second._energies()[:40], rtol=1e-6)
    assert abs(first.finalEnergy - second.finalEnergy) <= 1e-3 * abs(second.finalEnergy)
    assert first.finalRmsForce <= TOLERANCE * settings.tolerance_factor
    assert abs(first.initialEnergy - second.initialEnergy) <= 1e-9 * abs(second.initialEnergy)
    assert abs(energy_of(device) - first.finalEnergy) <= 1e-6 * abs(first.finalEnergy)
    if system.getNumConstraints():
        assert_constraints_hold(system, positions_of(device), 2e-5)


def test_a_laplacian_p_is_a_real_envelope_and_mu_i_is_diagonal(device_cases):
    """What the two P's above exercise on the device: the envelope solve and the division."""
    system, start = device_cases["hbonds"]
    bridge = EnergyBridge(opencl_context(system, start, "double"))
    laplacian, _ = precon_setup(bridge, stage_settings())
    identity, _ = precon_setup(bridge, stage_settings(laplacian=False))
    assert cpp_precon_matrix(laplacian).envelopeSize() > 100 and cpp_precon_matrix(identity).envelopeSize() == 0


def test_rebuilds_start_a_new_device_stage(device_cases):
    """rebuild_distance 0.05 nm: the device path (a new stage per P) takes the host path's steps (every energy
    within 1e-6 relative; measured 2e-7 at step 80 after 9 rebuilds, the gap growing as the search refines to
    1e-4 x the tolerance: 5e-5 at step 115) and costs one evaluation more per rebuild; the host path's
    reporter counts them."""
    system, start = device_cases["hbonds"]
    settings = stage_settings(rebuild_distance=0.05, max_steps=80, tolerance_factor=1e-4)
    runs = {}
    for where, reporter in (("device", None), ("host", Collect())):
        context = opencl_context(system, start, "double")
        bridge, recorder = EnergyBridge(context), RunRecorder(reporter)
        precon, _ = precon_setup(bridge, settings)
        result = compiled_precon_stage(bridge, recorder, TOLERANCE, settings, precon, on_device=where == "device")
        runs[where] = result, np.array([point.energy for point in recorder.history]), context, reporter
    device, host = runs["device"], runs["host"]
    rebuilds = max(seen[3] for seen in host[3].seen)
    assert rebuilds >= 5
    assert device[0].iterations == host[0].iterations == 80 and device[0].stop_reason == host[0].stop_reason
    np.testing.assert_allclose(device[1], host[1], rtol=1e-6)
    assert device[0].energy_evaluations == host[0].energy_evaluations + rebuilds
    assert abs(energy_of(device[2]) - device[0].final_energy) <= 1e-6 * abs(device[0].final_energy)
    assert_constraints_hold(system, positions_of(device[2]), 2e-5)


def test_fixed_particles_do_not_move(device_cases):
    """Five atoms of mass 0: exactly where they started; the others move as in the host stage."""
    system, start = device_cases["free"]
    system = openmm.XmlSerializer.clone(system)
    for i in range(5):
        system.setParticleMass(i, 0.0)
    settings = stage_settings(rebuild_distance=np.inf, max_steps=100)
    first, second, device, host = both_stages(system, start, settings)
    x = positions_of(device)
    np.testing.assert_array_equal(x[:5], np.asarray(start)[:5])
    assert np.abs(x[5:] - np.asarray(start)[5:]).max() > 1e-3
    np.testing.assert_allclose(first._energies()[:40], second._energies()[:40], rtol=1e-6)
    assert first.finalEnergy < first.initialEnergy


def test_an_energy_step_is_passed_on_its_slope_as_on_the_host():
    """The stepped well of test_precon_compiled: the device stage's slope test (g'.d reduced on the device)
    accepts the trial across the step as the host stage does; both converge at the well's centre in the same
    steps."""
    settings = stage_settings(laplacian=False, mu=100.0, max_step=0.05, tolerance_factor=0.1)
    first, second, device, _ = both_stages(stepped_well(), STEPPED_WELL_START, settings)
    assert first.stopReason == second.stopReason == "converged"
    assert first.iterations == second.iterations and first.energyEvaluations == second.energyEvaluations
    np.testing.assert_allclose(first._energies(), second._energies(), rtol=1e-12)
    assert abs(positions_of(device)[0, 0]) <= 1e-3


def test_non_finite_start_raises():
    context = opencl_context(singular_pair(), np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0]]), "double")
    precon = Preconditioner(scipy.sparse.csc_matrix((2, 2)), 100.0, np.zeros(2, dtype=bool))
    with pytest.raises(NonFiniteEnergyError):
        compiled_precon_stage(EnergyBridge(context), RunRecorder(), TOLERANCE, stage_settings(laplacian=False),
                              precon, on_device=True)


@pytest.mark.parametrize("precision", ["double", "mixed", "single"])
def test_method_precon_runs_on_the_device(device_cases, precision):
    """method precon (declash and stage by the device L-BFGS, then the projected polish) converges with
    ``result.engine`` naming the device, no higher than 5% above OpenMM's L-BFGS on CPU."""
    system, start = device_cases["hbonds"]
    context = opencl_context(system, start, precision)
    assert device_precon_available(context, compiled.plugin())
    result = openmm_reparam.minimize(context, method="precon")
    assert result.engine == LABEL and result.converged
    assert [s.name for s in result.stages][:3] == ["declash", "precon_setup", "precon"]
    reference = make_context(system, start, "CPU")
    openmm.LocalEnergyMinimizer.minimize(reference, TOLERANCE, 0)
    assert result.final_energy < energy_of(reference) + 0.05 * abs(energy_of(reference))
    assert_constraints_hold(system, positions_of(context), 2e-5)


def test_auto_lbfgs_runs_its_projected_lbfgs_on_the_device():
    """auto picks lbfgs for alanine dipeptide; where OpenMM's L-BFGS cannot run (pocl OpenCL) its polish (the
    projected L-BFGS, P = mu I) is the whole run, on the device; elsewhere (CUDA) OpenMM's L-BFGS runs first."""
    testsystems = pytest.importorskip("openmmtools.testsystems")
    molecule = testsystems.AlanineDipeptideVacuum()
    x = molecule.positions.value_in_unit(openmm.unit.nanometer)
    start = x + np.random.default_rng(0).normal(0.0, 0.01, x.shape)
    context = opencl_context(molecule.system, start, "double")
    blocked = openmm_lbfgs_blocker(context) is not None
    result = openmm_reparam.minimize(context)
    assert result.method == "lbfgs" and result.converged
    if blocked:
        assert [s.name for s in result.stages] == ["polish"] and result.engine == LABEL
    else:
        assert result.stages[0].name == "lbfgs"
    reference = make_context(molecule.system, start, "CPU")
    openmm.LocalEnergyMinimizer.minimize(reference, TOLERANCE, 0)
    assert result.final_energy <= energy_of(reference) + 1.0


def test_a_reporter_or_engine_cpp_keeps_the_host_stage(device_cases):
    system, start = device_cases["hbonds"]
    reporter = Collect()
    with_reporter = openmm_reparam.minimize(opencl_context(system, start), method="precon", reporter=reporter)
    assert with_reporter.engine == "cpp" and any(seen[0] == "precon" for seen in reporter.seen)
    switched_off = openmm_reparam.minimize(opencl_context(system, start), method="precon", engine="cpp")
    assert switched_off.engine == "cpp" and switched_off.converged
