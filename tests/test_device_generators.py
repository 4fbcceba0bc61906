"""The reparametrized stages on the device (runDeviceGeneratorStage: the device Adam kernel with the generator's
kernels, X = X0 + V z for ``linear`` and the GNN's layers for ``gnn``, and their gradients J^T g) on real OpenCL
Contexts (OpenCL, or OPENMM_REPARAM_TEST_PLATFORM: see test_device_stages): the host stage's steps to rounding on
the same kind of Context (all atoms, HBonds, a TIP4P-Ew box whose virtual sites are rows that do not move, a
solvated peptide whose water and ions move as coordinates beside theta), methods linear and gnn on the device
against the CPU engine, restarts, and the host stage where a reporter is given. Skips without an OpenCL runtime
or the plugin's OpenCL library."""
from __future__ import annotations

import copy

import numpy as np
import openmm
import pytest
import torch
from openmm import app

import openmm_reparam
from openmm_reparam.core.atoms import solvent_mask
from openmm_reparam.engines import compiled
from openmm_reparam.reparam.build import build_generator
from openmm_reparam.reparam.options import GeneratorOptions, SlowModeOptions

from conftest import energy_of, make_context, perturbed, positions_of, solvated_enkephalin
from test_device_stages import (LABEL, _device_ready, assert_constraints_hold, cpp_settings, lem_minimum,
                                opencl_context)
from test_device_stages import device_cases, keep_the_locale  # noqa: F401  (fixtures; autouse)

pytestmark = pytest.mark.skipif(not _device_ready(), reason="no OpenCL runtime or no OpenCL device library built")


KINDS = ["linear", "gnn"]


def fitted_generator(system, start, kind, n_modes=10):
    """Method ``kind``'s generator for ``start``, fitted as the method fits it (slow modes from a CPU Context; a
    SoluteGenerator where the System holds water or ions next to a larger molecule). The GNN is kept small
    (hidden 8) so that pocl runs its kernels quickly."""
    options = GeneratorOptions(n_modes=n_modes, hidden=8, fit_steps=300)
    generator, _ = build_generator(make_context(system, start, "CPU"), kind, 0, options, SlowModeOptions())
    return generator


def host_and_device(system, start, generator, steps, precision="double", **overrides):
    """The same stage from ``start`` on the host (runAdamStage with the C++ generator) and on the device
    (runDeviceGeneratorStage), each on its own Context of the device platform: (outcome, context, generator)."""
    settings = cpp_settings(steps, patience=1000, lr=1e-3, **overrides)
    host, device = opencl_context(system, start, precision), opencl_context(system, start, precision)
    on_host, on_device = copy.deepcopy(generator), copy.deepcopy(generator)
    host_generator, device_generator = compiled.to_cpp_generator(on_host), compiled.to_cpp_generator(on_device)
    host_outcome = compiled.plugin().runAdamStage(host, host_generator, settings, None)
    device_outcome = compiled.plugin().runDeviceGeneratorStage(device, device_generator, settings)
    compiled.copy_weights_back(host_generator, on_host)
    compiled.copy_weights_back(device_generator, on_device)
    return (host_outcome, host, on_host), (device_outcome, device, on_device)


def output(generator):
    """The generator's output (its own atoms)."""
    with torch.no_grad():
        return getattr(generator, "inner", generator)().numpy()


def assert_same_up_to_translation(x, y, atol):
    """x and y (N, 3) agree within atol once their mean difference is taken out: the lowest Laplacian mode is the
    uniform translation, whose gradient (the net force, zero up to rounding) Adam turns into lr-sized steps of
    either sign, and which the energy does not see (in vacuum and in a periodic box)."""
    difference = x - y
    np.testing.assert_allclose(difference - difference.mean(axis=0), 0.0, atol=atol)


@pytest.fixture(scope="module")
def solvated():
    """Met-enkephalin in a small TIP3P box with ions (PME, HBonds, rigid water): a SoluteGenerator."""
    return solvated_enkephalin()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", ["free", "hbonds", "tip4pew"])
def test_steps_match_the_host_stage(device_cases, case, kind):
    """Each step's energy to rounding over 100 steps in double precision (measured 2e-11 kJ/mol free and with
    HBonds), the Context left at the same best point and the generator at the same last parameters (its output
    up to the translation)."""
    system, start = device_cases[case]
    generator = fitted_generator(system, start, kind)
    (host, host_context, host_generator), (device, device_context, device_generator) = \
        host_and_device(system, start, generator, 100)
    assert host.iterations == device.iterations == 100 and device.stopReason == "max_steps"
    np.testing.assert_allclose(device._energies(), host._energies(), rtol=1e-9, atol=1e-7)
    assert device.bestEnergy < device.initialEnergy - 1.0
    assert device.bestEnergy == pytest.approx(host.bestEnergy, rel=1e-9)
    assert energy_of(device_context) == pytest.approx(device.bestEnergy, rel=1e-8)
    assert_same_up_to_translation(positions_of(device_context), positions_of(host_context), 1e-6)
    assert_same_up_to_translation(output(device_generator), output(host_generator), 1e-6)
    if system.getNumConstraints():
        assert_constraints_hold(system, positions_of(device_context), 2e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_virtual_sites_stay_with_their_atoms(device_cases, kind):
    """In the TIP4P-Ew box (a pure solvent: every particle is a row) the M sites are massless rows: they are not
    moved by the generator but recomputed from their water's atoms."""
    system, start = device_cases["tip4pew"]
    generator = fitted_generator(system, start, kind)
    _, (outcome, context, _) = host_and_device(system, start, generator, 50)
    x = positions_of(context)
    context.computeVirtualSites()
    np.testing.assert_allclose(positions_of(context), x, atol=1e-9)
    assert outcome.bestEnergy < outcome.initialEnergy


@pytest.mark.parametrize("kind", KINDS)
def test_solvent_moves_as_coordinates_beside_the_generator(solvated, kind):
    """A SoluteGenerator: the peptide through the generator, water and ions as plain coordinates on their
    constraints, all clipped together; 15 steps against the host stage (energies to rounding), and the water
    really moved."""
    system, start = solvated
    generator = fitted_generator(system, start, kind)
    assert hasattr(generator, "solvent_index")
    (host, host_context, host_generator), (device, device_context, device_generator) = \
        host_and_device(system, start, generator, 15)
    np.testing.assert_allclose(device._energies(), host._energies(), rtol=1e-9, atol=1e-6)
    assert_same_up_to_translation(output(device_generator), output(host_generator), 1e-6)
    solvent = ~solvent_mask(system)
    moved = np.abs(positions_of(device_context)[~solvent] - start[~solvent]).max()
    assert moved > 1e-4
    np.testing.assert_allclose(device_generator.solvent_coordinates.detach().numpy(),
                               positions_of(device_context)[~solvent], atol=1e-12)
    assert_constraints_hold(system, positions_of(device_context), 2e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("precision", ["mixed", "single"])
def test_lower_precisions_follow_the_host_stage(device_cases, precision, kind):
    """In mixed and single precision the device's sums (and, in single, the generator's arithmetic) are in the
    platform's precision, where the host stage evaluates its generator in double: the first 30 energies within
    1e-5 of the starting energy of the host stage's on the same kind of Context (measured: 3e-6 for the GNN in
    single precision, its path drifting by rounding)."""
    system, start = device_cases["hbonds"]
    generator = fitted_generator(system, start, kind)
    (host, _, _), (device, _, _) = host_and_device(system, start, generator, 30, precision)
    np.testing.assert_allclose(device._energies(), host._energies(), rtol=0, atol=1e-5 * abs(host.initialEnergy))


@pytest.fixture(scope="module")
def near_minimum():
    """Met-enkephalin with HBonds 0.002 nm from an L-BFGS minimum (as test_device_stages' well-conditioned cases)."""
    from conftest import load_peptide
    _, system, positions = load_peptide("1plw", constraints=app.HBonds)
    return system, perturbed(lem_minimum(system, positions), 0.002)


@pytest.mark.parametrize("kind", KINDS)
def test_the_method_runs_on_the_device_like_the_cpu_engine(near_minimum, kind):
    """minimize(method="linear" or "gnn", its own defaults): the reparam and fine stages on the device,
    ``result.engine`` names it, and the result is the CPU engine's within 1e-3 relative."""
    system, start = near_minimum
    context = opencl_context(system, start, "double")
    on_device = openmm_reparam.minimize(context, method=kind, steps=200, seed=3)
    on_cpu = openmm_reparam.minimize(make_context(system, start, "CPU"), method=kind, steps=200, seed=3)
    assert on_device.engine == LABEL and on_cpu.engine == "cpp"
    assert on_device.converged and on_cpu.converged
    assert abs(on_device.final_energy - on_cpu.final_energy) <= 1e-3 * abs(on_cpu.final_energy)
    reparam = {stage.name: stage for stage in on_device.stages}["reparam"]
    assert reparam.iterations > 0 and reparam.final_energy <= reparam.initial_energy
    assert_constraints_hold(system, positions_of(context), 2e-5)


@pytest.mark.parametrize("kind", KINDS)
def test_restarts_on_the_device_follow_the_host_stages(device_cases, kind):
    """restarts=2: each restart runs on the device from the re-anchored generator (its parameters after the last
    step, as the host leaves them): the same restarts as the host stages' on the same kind of Context
    (engine="cpp"), stage by stage (measured with 60 steps a stage: within 2e-13 relative, both kinds, on an AMD
    EPYC with pocl; with 100 steps gnn's last restart, from 6,740 kJ/mol, amplified a 1e-6 difference in its start
    to 2.5e-3 there, while it stayed within 2e-5 on another machine: chaos, not a different step)."""
    system, start = device_cases["free"]
    options = dict(method=kind, steps=60, restarts=2, seed=1, polish=False, fine_steps=0)
    on_device = openmm_reparam.minimize(opencl_context(system, start, "double"), **options)
    on_cpu = openmm_reparam.minimize(opencl_context(system, start, "double"), engine="cpp", **options)
    assert on_cpu.engine == "cpp"
    assert on_device.engine == LABEL and len(on_device.restarts) == len(on_cpu.restarts) == 2
    for device, cpu in zip(on_device.restarts, on_cpu.restarts):
        assert device["kept"] == cpu["kept"]
        assert device["start_energy"] == pytest.approx(cpu["start_energy"], rel=1e-6)
        assert device["final_energy"] == pytest.approx(cpu["final_energy"], rel=1e-6)
    assert on_device.restarts[-1]["final_energy"] < on_device.restarts[0]["start_energy"]


def test_a_reporter_keeps_the_host_stage(device_cases):
    system, start = device_cases["free"]

    class Count(openmm.MinimizationReporter):
        calls = 0

        def report(self, iteration, x, grad, args):
            Count.calls += 1
            return False

    result = openmm_reparam.minimize(opencl_context(system, start, "double"), method="linear", steps=20,
                                     fine_steps=20, reporter=Count())
    assert result.engine == "cpp" and Count.calls >= 40


def test_a_network_of_ones_own_runs_its_stage_on_the_host_beside_the_device_stages(device_cases):
    """A user's generator has no device kernels: its TorchScript runs the reparam stage in the host C++ stage on
    the device's Context (engine "cpp"), the coordinate stage stays on the device, and the trained values come
    back into the user's module."""
    from test_generators import ModeMLP
    system, start = device_cases["free"]
    networks = []

    def factory(inputs):
        networks.append(ModeMLP(inputs.modes, inputs.positions))
        return networks[-1]

    result = openmm_reparam.minimize(opencl_context(system, start, "double"), method="gnn", generator=factory,
                                     steps=20, fine_steps=20, n_modes=6)
    reparam, fine = result.stage("reparam"), result.stage("fine")
    assert reparam.engine == "cpp" and fine.engine == LABEL and result.engine == "+".join(sorted({"cpp", LABEL}))
    assert reparam.iterations == 20 and reparam.final_energy < reparam.initial_energy
    assert float(networks[0].out.weight.detach().abs().max()) > 0.0  # trained from zero, in C++


def _device_counts():
    counts = compiled.plugin().getDeviceStageCounts()
    return counts.kernelsCreated, counts.programsCompiled


@pytest.mark.parametrize("kind", KINDS)
def test_a_second_generator_stage_on_a_context_compiles_no_program(device_cases, kind):
    """The generator stage's kernel is kept per Context and generator shapes: a second stage with a generator of
    the same shapes creates no kernel and compiles no program, and runs the new generator's values (the same
    steps as the first stage from the same start), while other shapes get a kernel and a program of their own."""
    system, start = device_cases["free"]
    generator = fitted_generator(system, start, kind)
    settings = cpp_settings(20, patience=1000, lr=1e-3)
    context = opencl_context(system, start, "double")

    def stage(fitted):
        cpp_generator = compiled.to_cpp_generator(copy.deepcopy(fitted))
        return compiled.plugin().runDeviceGeneratorStage(context, cpp_generator, settings)

    before = _device_counts()
    first = stage(generator)
    after_first = _device_counts()
    assert after_first == (before[0] + 1, before[1] + 1)
    context.setPositions(start)
    second = stage(generator)
    assert _device_counts() == after_first
    assert second.iterations == first.iterations == 20
    np.testing.assert_allclose(second._energies(), first._energies(), rtol=1e-12)
    if kind == "linear":
        stage(fitted_generator(system, start, kind, n_modes=6))
        assert _device_counts() == (after_first[0] + 1, after_first[1] + 1)
