"""stiffness(): vibrational frequencies from finite differences of a Context's forces, against analytic Hessians,
known harmonic systems, the dense path and minimized / unminimized structures."""
import math

import numpy as np
import openmm
import pytest
import torch
from openmm import app, unit

from openmm_reparam import StiffnessResult, stiffness  # the public API: openmm_reparam.stiffness
from openmm_reparam.analysis.stiffness import WAVENUMBER_PER_ROOT_EIGENVALUE, eigenvalues_to_wavenumbers

from conftest import load_peptide, make_context, positions_of

O_MASS, H_MASS = 15.999, 1.008
BOND, ANGLE = 0.1, 1.82  # nm, rad


def context_of(system, positions, platform="Reference"):
    return make_context(system, np.asarray(positions, dtype=float), platform)


def water_positions(length=BOND, angle=ANGLE):
    return np.array([[0.0, 0.0, 0.0], [length, 0.0, 0.0], [length * math.cos(angle), length * math.sin(angle), 0.0]])


def water_system(constrained=False, bond_k=4e5, angle_k=400.0, hh_rest=None, hh_k=3000.0):
    """A water molecule: harmonic O–H bonds (or constraints), an H–O–H angle, optionally an H–H spring whose
    rest length is longer than the H–H distance, so that the O–H bonds carry tension at the minimum."""
    system = openmm.System()
    for mass in (O_MASS, H_MASS, H_MASS):
        system.addParticle(mass)
    bonds = openmm.HarmonicBondForce()
    for h in (1, 2):
        if constrained:
            system.addConstraint(0, h, BOND)
        else:
            bonds.addBond(0, h, BOND, bond_k)
    if hh_rest is not None:
        bonds.addBond(1, 2, hh_rest, hh_k)
    angles = openmm.HarmonicAngleForce()
    angles.addAngle(1, 0, 2, ANGLE, angle_k)
    system.addForce(bonds)
    system.addForce(angles)
    return system


def analytic_water_frequencies(bond_k=4e5, angle_k=400.0):
    """Frequencies (cm⁻¹) of the flexible water from the exact Hessian (torch autograd) of the same energy."""
    x0 = torch.tensor(water_positions(), dtype=torch.float64).reshape(-1)

    def energy(x):
        x = x.view(3, 3)
        u, v = x[1] - x[0], x[2] - x[0]
        theta = torch.acos((u @ v) / (u.norm() * v.norm()))
        return 0.5 * angle_k * (theta - ANGLE) ** 2 + 0.5 * bond_k * ((u.norm() - BOND) ** 2 + (v.norm() - BOND) ** 2)

    hessian = torch.autograd.functional.hessian(energy, x0).numpy()
    root = np.sqrt(np.repeat([O_MASS, H_MASS, H_MASS], 3))
    values = np.linalg.eigvalsh(hessian / np.outer(root, root))
    return eigenvalues_to_wavenumbers(values[-3:])  # the six lowest are rigid-body zeros


def minimized(context, tolerance=1e-6):
    openmm.LocalEnergyMinimizer.minimize(context, tolerance, 0)
    return context


def test_wavenumber_conversion_factor_matches_openmm_units():
    # 1 kJ/mol/nm²/amu in s⁻² (openmm's dalton is g/mol), its square root in rad/s, over 2πc in cm/s
    per_second_sq = (1.0 * unit.kilojoule_per_mole / unit.nanometer ** 2 / unit.dalton
                     ).value_in_unit(unit.joule / unit.meter ** 2 / unit.kilogram)
    assert per_second_sq == pytest.approx(1e24, rel=1e-9)
    expected = math.sqrt(per_second_sq) / (2 * math.pi * 2.99792458e10)
    assert WAVENUMBER_PER_ROOT_EIGENVALUE == pytest.approx(expected, rel=1e-8)
    assert WAVENUMBER_PER_ROOT_EIGENVALUE == pytest.approx(5.30884, rel=1e-5)
    np.testing.assert_allclose(eigenvalues_to_wavenumbers([-4.0, 0.0, 9.0]),
                               [-2 * expected, 0.0, 3 * expected], rtol=1e-8)


@pytest.mark.parametrize("method", ["dense", "sparse"])
def test_diatomic_has_one_frequency_sqrt_k_over_mu(method):
    system = openmm.System()
    system.addParticle(12.0)
    system.addParticle(16.0)
    bond = openmm.HarmonicBondForce()
    bond.addBond(0, 1, 0.113, 1.5e5)
    system.addForce(bond)
    direction = np.array([0.6, 0.48, 0.64]) / np.linalg.norm([0.6, 0.48, 0.64])
    result = stiffness(context_of(system, [[0.0, 0.0, 0.0], 0.113 * direction]), n_modes=10, method=method)
    # a linear molecule: 6 − 5 rigid-body directions leave one vibration
    assert result.projected_rigid == 5 and result.n_vibrational_modes == 1
    assert result.frequencies.shape == (1,) and result.vectors.shape == (2, 3, 1)
    mu = 12.0 * 16.0 / 28.0
    assert result.frequencies[0] == pytest.approx(math.sqrt(1.5e5 / mu) * WAVENUMBER_PER_ROOT_EIGENVALUE, rel=2e-4)
    assert result.is_minimum and result.method == method


def test_flexible_water_matches_the_analytic_hessian():
    context = context_of(water_system(), water_positions())
    result = stiffness(context)
    assert result.n_vibrational_modes == 3 and result.projected_rigid == 6
    # central differences: O(step²) error, about 1e-4 relative at the default 1e-3 nm, 1e-6 at 1e-4 nm
    np.testing.assert_allclose(result.frequencies, analytic_water_frequencies(), rtol=2e-4)
    np.testing.assert_allclose(stiffness(context, step=1e-4).frequencies, analytic_water_frequencies(), rtol=1e-5)
    # normal modes: unit norm, orthogonal, free of rigid-body motion (no net mass-weighted translation)
    flat = result.vectors.reshape(-1, 3)
    np.testing.assert_allclose(flat.T @ flat, np.eye(3), atol=1e-8)
    root_mass = np.sqrt([O_MASS, H_MASS, H_MASS])
    np.testing.assert_allclose(np.einsum("a,adk->dk", root_mass, result.vectors), 0, atol=1e-8)


def test_constrained_water_equals_the_limit_of_stiff_bonds():
    """Frequencies on the constraint surface: the bend of rigid-bond water is the stiff-bond limit, including
    the curvature that the tension in the constrained bonds adds (an H–H spring loads them)."""
    rigid = minimized(context_of(water_system(constrained=True, hh_rest=0.25), water_positions()))
    stiff = minimized(context_of(water_system(bond_k=1e9, hh_rest=0.25), water_positions()))
    on_surface = stiffness(rigid)
    assert on_surface.projected_constraints == 2 and on_surface.n_vibrational_modes == 1
    limit = stiffness(stiff, step=1e-5).frequencies[0]  # small step: the 1e9 bonds are very curved
    assert on_surface.frequencies[0] == pytest.approx(limit, rel=2e-4)
    tensionless = stiffness(minimized(context_of(water_system(constrained=True), water_positions())))
    assert abs(on_surface.frequencies[0] - tensionless.frequencies[0]) > 20  # the tension term matters


def double_well(x0):
    """One particle in E = a (x² − b²)² + ½ k (y² + z²): a saddle at x = 0, minima at x = ±b."""
    system = openmm.System()
    system.addParticle(2.0)
    force = openmm.CustomExternalForce("a*(x^2-b^2)^2 + 0.5*k*(y^2+z^2)")
    for name, value in (("a", 1e4), ("b", 0.1), ("k", 500.0)):
        force.addGlobalParameter(name, value)
    force.addParticle(0, [])
    system.addForce(force)
    return context_of(system, [[x0, 0.0, 0.0]])


def test_saddle_point_has_an_imaginary_mode_and_the_minimum_has_none():
    # external potential: no rigid-body symmetry, so nothing is projected
    saddle = stiffness(double_well(0.0), project_rigid=False)
    curvature = -4 * 1e4 * 0.1 ** 2 / 2.0  # d²E/dx² / m at x = 0
    assert saddle.frequencies[0] == pytest.approx(-math.sqrt(-curvature) * WAVENUMBER_PER_ROOT_EIGENVALUE, rel=2e-4)
    np.testing.assert_allclose(saddle.frequencies[1:], math.sqrt(500 / 2.0) * WAVENUMBER_PER_ROOT_EIGENVALUE,
                               rtol=1e-6)
    assert not saddle.is_minimum and saddle.n_imaginary == 1
    assert abs(saddle.vectors[0, 0, 0]) == pytest.approx(1.0)  # the imaginary mode is along x
    bottom = stiffness(double_well(0.1), project_rigid=False)
    assert bottom.is_minimum and bottom.frequencies[0] > 0


def test_tight_minimum_has_no_imaginary_mode_and_the_start_has_some(plw):
    _, system, positions = plw
    context = make_context(system, positions, "CPU")
    start = stiffness(context, n_modes=6)
    assert not start.is_minimum and start.n_imaginary == 6 and start.frequencies[0] < -100
    np.testing.assert_array_equal(positions_of(context), positions_of(make_context(system, positions, "CPU")))
    minimized(context, tolerance=0.01)
    before = positions_of(context)
    result = stiffness(context, n_modes=6)
    np.testing.assert_array_equal(positions_of(context), before)  # positions exactly as they were
    assert result.is_minimum and result.frequencies[0] > 0
    assert np.all(np.diff(result.frequencies) >= 0)
    assert result.n_vibrational_modes == 3 * len(positions) - 6
    assert result.force_evaluations == 6 * len(positions) and result.method == "dense"
    summary = result.to_dict()
    assert summary["is_minimum"] and summary["method"] == "dense" and len(summary["frequencies"]) == 6
    assert "vectors" not in summary


def test_sparse_path_agrees_with_the_dense_path_and_projects_constraints(plw):
    topology, _, positions = plw
    system = load_peptide("1plw", constraints=app.HBonds)[1]
    context = minimized(make_context(system, positions, "CPU"), tolerance=1.0)
    dense = stiffness(context, n_modes=6, method="dense")
    assert dense.projected_constraints == system.getNumConstraints() > 0
    assert dense.n_vibrational_modes == 3 * len(positions) - 6 - system.getNumConstraints()
    # a cutoff beyond the molecule's size: every coupling kept, the same Hessian
    whole = stiffness(context, n_modes=6, method="sparse", cutoff=3.0)
    np.testing.assert_allclose(whole.frequencies, dense.frequencies, rtol=1e-6)
    overlap = np.abs(np.einsum("adk,adk->k", dense.vectors, whole.vectors))
    np.testing.assert_allclose(overlap, 1.0, atol=1e-4)
    # the default 0.6 nm cutoff drops long-range couplings: close, not equal
    local = stiffness(context, n_modes=6, method="sparse")
    assert local.method == "sparse"
    np.testing.assert_allclose(local.frequencies, dense.frequencies, rtol=0.03)


def test_periodic_system_projects_translations_only():
    system = water_system()
    system.setDefaultPeriodicBoxVectors(openmm.Vec3(2, 0, 0), openmm.Vec3(0, 2, 0), openmm.Vec3(0, 0, 2))
    nonbonded = openmm.NonbondedForce()
    nonbonded.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
    nonbonded.setCutoffDistance(0.9)
    for _ in range(3):
        nonbonded.addParticle(0.0, 0.3, 0.5)
    system.addForce(nonbonded)  # makes the System periodic; no self-interaction within the molecule's bonds
    for i, j in ((0, 1), (0, 2), (1, 2)):
        nonbonded.addException(i, j, 0.0, 1.0, 0.0)
    # a small step: the free rotations then show no finite-difference stiffness from the bonds
    result = stiffness(context_of(system, water_positions() + 1.95), n_modes=9, method="sparse", step=1e-5)
    assert result.projected_rigid == 3 and result.n_vibrational_modes == 6
    # an isolated molecule in a box: its three rotations are free, the vibrations as without a box
    np.testing.assert_allclose(result.frequencies[:3], 0, atol=1.0)
    np.testing.assert_allclose(result.frequencies[3:], analytic_water_frequencies(), rtol=1e-5)


def test_fixed_particles_are_left_out():
    system = water_system()
    system.addParticle(0.0)  # a massless particle bonded to the oxygen anchors the molecule
    anchor = openmm.HarmonicBondForce()
    anchor.addBond(0, 3, 0.2, 1000.0)
    system.addForce(anchor)
    positions = np.vstack([water_positions(), [[-0.2, 0.0, 0.0]]])
    context = context_of(system, positions)
    result = stiffness(context, n_modes=20)
    assert result.projected_rigid == 0 and result.n_vibrational_modes == 9
    assert result.vectors.shape == (4, 3, 9) and np.all(result.vectors[3] == 0)
    np.testing.assert_array_equal(positions_of(context), positions)


def test_bad_input_gets_clear_errors():
    context = context_of(water_system(), water_positions())
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_modes"):
            stiffness(context, n_modes=bad)
    with pytest.raises(ValueError, match="method"):
        stiffness(context, method="exact")
    with pytest.raises(TypeError, match="step must be a length"):
        stiffness(context, step=1e-3 * unit.kilojoule_per_mole)
    with pytest.raises(ValueError, match="step"):
        stiffness(context, step=-1e-3)
    with pytest.raises(TypeError, match="threshold must be a wavenumber"):
        stiffness(context, threshold=10 * unit.nanometer)
    with pytest.raises(TypeError, match="openmm.Context"):
        stiffness(context.getSystem())
    np.testing.assert_array_equal(positions_of(context), water_positions())


def test_quantities_are_accepted():
    context = context_of(water_system(), water_positions())
    plain = stiffness(context)
    with_units = stiffness(context, step=0.01 * unit.angstrom, threshold=2000 / unit.meter)
    assert with_units.threshold == pytest.approx(20.0)
    np.testing.assert_allclose(with_units.frequencies, plain.frequencies, rtol=1e-6)
    assert isinstance(with_units, StiffnessResult)
