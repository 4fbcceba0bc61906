"""A System restricted to some of its particles, for finite-difference probes of a solute's couplings.

The force-constant graph of a solvated protein needs d²E/dx_i dx_j for solute pairs only. For bonded terms and
pairwise nonbonded interactions (PME included: its reciprocal part is a sum over pairs, and the neutralizing
background of a charged subset does not depend on positions) those blocks do not depend on where the water is,
so they can be probed on a System that holds the solute alone, at the cost of a vacuum-sized evaluation instead
of one of the whole box.

:func:`restrict_system` builds that System when it is exact to do so: every force of the System is one of the
types below (the AMBER and CHARMM terms, CustomNonbondedForce, Custom bonded and external forces) and no term
couples two chosen particles through one left out. A term between one chosen particle and others left out only
adds to that particle's own 3×3 block (the diagonal, which the force-constant graph ignores) and is dropped.
Anything else (GB implicit solvent, CustomGB, TorchForce, AMOEBA, ...), a chosen virtual site or a left-out one
built from chosen particles returns None, and the caller probes the whole System.
"""
from __future__ import annotations

import copy
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import openmm

#: Forces that add nothing to the energy: left out of the restricted System.
_NO_ENERGY = (openmm.CMMotionRemover, openmm.MonteCarloBarostat, openmm.AndersenThermostat)


class _Straddles(Exception):
    """A term couples two chosen particles through one that is left out."""


class _IndexMap:
    """Old particle index -> new one, for the chosen particles."""

    def __init__(self, chosen: np.ndarray):
        self.new = -np.ones(len(chosen), dtype=np.int64)
        self.new[chosen] = np.arange(int(chosen.sum()))

    def term(self, particles: Sequence[int]) -> Optional[List[int]]:
        """The new indices of a term's particles, or None when at most one of them is chosen (the term adds
        nothing to the couplings among chosen particles); raises :class:`_Straddles` when two or more are
        chosen and another is not."""
        mapped = [int(self.new[p]) for p in particles]
        inside = sum(m >= 0 for m in mapped)
        if inside == len(mapped):
            return mapped
        if inside >= 2:
            raise _Straddles()
        return None


def _periodic_flag(old, new) -> None:
    if hasattr(old, "setUsesPeriodicBoundaryConditions"):
        new.setUsesPeriodicBoundaryConditions(old.usesPeriodicBoundaryConditions())


def _copy_terms(count: int, get: Callable, add: Callable, n_particles: int, index: _IndexMap) -> None:
    """Copy each term ``get(k) = (p_1, ..., p_n, *parameters)`` whose particles are all chosen."""
    for k in range(count):
        values = list(get(k))
        particles = index.term(values[:n_particles])
        if particles is not None:
            add(*particles, *values[n_particles:])


#: Standard bonded force class -> (its term's name as in getNum<Term>s / get<Term>Parameters / add<Term>,
#: particles per term).
_STANDARD_TERMS = {openmm.HarmonicBondForce: ("Bond", 2), openmm.HarmonicAngleForce: ("Angle", 3),
                   openmm.PeriodicTorsionForce: ("Torsion", 4), openmm.RBTorsionForce: ("Torsion", 4)}


def _standard(f, index):
    """A standard bonded force: the terms among chosen particles, with their parameters."""
    term, n_particles = _STANDARD_TERMS[type(f)]
    new = type(f)()
    _copy_terms(getattr(f, f"getNum{term}s")(), getattr(f, f"get{term}Parameters"), getattr(new, f"add{term}"),
                n_particles, index)
    return new


def _cmap_torsion(f, index):
    new = openmm.CMAPTorsionForce()
    for m in range(f.getNumMaps()):
        new.addMap(*f.getMapParameters(m))
    for k in range(f.getNumTorsions()):
        values = list(f.getTorsionParameters(k))  # map, a1..a4, b1..b4
        particles = index.term(values[1:])
        if particles is not None:
            new.addTorsion(values[0], *particles)
    return new


#: Custom force class -> (its term's name as in getNum<Term>s / get<Term>Parameters / add<Term>, particles per
#: term, the per-term parameters' name as in getNumPer<Name>Parameters / getPer<Name>ParameterName).
_CUSTOM_TERMS = {openmm.CustomBondForce: ("Bond", 2, "Bond"), openmm.CustomAngleForce: ("Angle", 3, "Angle"),
                 openmm.CustomTorsionForce: ("Torsion", 4, "Torsion"),
                 openmm.CustomExternalForce: ("Particle", 1, "Particle")}


def _custom(f, index):
    """A Custom bonded or external force: the same expression, parameters and global parameters, and the terms
    of the chosen particles."""
    term, n_particles, per = _CUSTOM_TERMS[type(f)]
    new = type(f)(f.getEnergyFunction())
    for p in range(getattr(f, f"getNumPer{per}Parameters")()):
        getattr(new, f"addPer{per}Parameter")(getattr(f, f"getPer{per}ParameterName")(p))
    _copy_globals(f, new)
    _copy_terms(getattr(f, f"getNum{term}s")(), getattr(f, f"get{term}Parameters"),
                lambda *values: getattr(new, f"add{term}")(*values[:-1], list(values[-1])), n_particles, index)
    return new


def _copy_globals(old, new) -> None:
    for g in range(old.getNumGlobalParameters()):
        new.addGlobalParameter(old.getGlobalParameterName(g), old.getGlobalParameterDefaultValue(g))
    if hasattr(old, "getNumEnergyParameterDerivatives"):
        for d in range(old.getNumEnergyParameterDerivatives()):
            new.addEnergyParameterDerivative(old.getEnergyParameterDerivativeName(d))


def _custom_nonbonded(f, index):
    """The chosen particles, their exclusions and interaction groups; expression, parameters, tabulated and
    computed values, method, cutoff and switching as they are (the long-range correction adds no force)."""
    new = openmm.CustomNonbondedForce(f.getEnergyFunction())
    for p in range(f.getNumPerParticleParameters()):
        new.addPerParticleParameter(f.getPerParticleParameterName(p))
    _copy_globals(f, new)
    for t in range(f.getNumTabulatedFunctions()):
        new.addTabulatedFunction(f.getTabulatedFunctionName(t), copy.deepcopy(f.getTabulatedFunction(t)))
    for c in range(f.getNumComputedValues()):
        new.addComputedValue(*f.getComputedValueParameters(c))
    new.setNonbondedMethod(f.getNonbondedMethod())
    new.setCutoffDistance(f.getCutoffDistance())
    new.setUseSwitchingFunction(f.getUseSwitchingFunction())
    new.setSwitchingDistance(f.getSwitchingDistance())
    new.setUseLongRangeCorrection(False)
    for i in np.flatnonzero(index.new >= 0):
        new.addParticle(f.getParticleParameters(int(i)))
    _copy_terms(f.getNumExclusions(), f.getExclusionParticles, new.addExclusion, 2, index)
    for g in range(f.getNumInteractionGroups()):
        first, second = (sorted(int(index.new[p]) for p in group if index.new[p] >= 0)
                         for group in f.getInteractionGroupParameters(g))
        new.addInteractionGroup(first, second)
    return new


def _nonbonded(f, index):
    """The chosen particles and their exceptions, the same method, cutoff, Ewald/PME settings and offsets."""
    new = openmm.NonbondedForce()
    new.setNonbondedMethod(f.getNonbondedMethod())
    new.setCutoffDistance(f.getCutoffDistance())
    new.setUseSwitchingFunction(f.getUseSwitchingFunction())
    new.setSwitchingDistance(f.getSwitchingDistance())
    new.setEwaldErrorTolerance(f.getEwaldErrorTolerance())
    new.setPMEParameters(*f.getPMEParameters())
    new.setLJPMEParameters(*f.getLJPMEParameters())
    new.setReactionFieldDielectric(f.getReactionFieldDielectric())
    new.setUseDispersionCorrection(False)  # a function of the volume alone: no force
    new.setIncludeDirectSpace(f.getIncludeDirectSpace())
    new.setExceptionsUsePeriodicBoundaryConditions(f.getExceptionsUsePeriodicBoundaryConditions())
    new.setReciprocalSpaceForceGroup(f.getReciprocalSpaceForceGroup())
    for g in range(f.getNumGlobalParameters()):
        new.addGlobalParameter(f.getGlobalParameterName(g), f.getGlobalParameterDefaultValue(g))
    for i in np.flatnonzero(index.new >= 0):
        new.addParticle(*f.getParticleParameters(int(i)))
    exceptions = {}
    for k in range(f.getNumExceptions()):
        values = list(f.getExceptionParameters(k))
        particles = index.term(values[:2])
        if particles is not None:
            exceptions[k] = new.addException(*particles, *values[2:])
    for k in range(f.getNumParticleParameterOffsets()):
        parameter, particle, *scales = f.getParticleParameterOffset(k)
        mapped = index.term([particle])
        if mapped is not None:
            new.addParticleParameterOffset(parameter, mapped[0], *scales)
    for k in range(f.getNumExceptionParameterOffsets()):
        parameter, exception, *scales = f.getExceptionParameterOffset(k)
        if exception in exceptions:
            new.addExceptionParameterOffset(parameter, exceptions[exception], *scales)
    return new


_COPIERS: Dict[type, Callable] = {
    **{kind: _standard for kind in _STANDARD_TERMS}, **{kind: _custom for kind in _CUSTOM_TERMS},
    openmm.CMAPTorsionForce: _cmap_torsion, openmm.NonbondedForce: _nonbonded,
    openmm.CustomNonbondedForce: _custom_nonbonded,
}


def restrict_system(system: openmm.System, chosen: np.ndarray) -> Optional[openmm.System]:
    """A System of the ``chosen`` particles (an (N,) bool mask) alone, with the same masses, box, constraints
    and forces (their terms among chosen particles; force groups kept), or None when the second derivatives
    among the chosen particles would not be exactly those of ``system`` (see the module docstring)."""
    chosen = np.asarray(chosen, dtype=bool)
    if _virtual_sites_cross(system, chosen):
        return None
    index = _IndexMap(chosen)
    restricted = openmm.System()
    restricted.setDefaultPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
    for i in np.flatnonzero(chosen):
        restricted.addParticle(system.getParticleMass(int(i)))
    try:
        _copy_terms(system.getNumConstraints(), system.getConstraintParameters, restricted.addConstraint, 2, index)
        for force in system.getForces():
            if isinstance(force, _NO_ENERGY):
                continue
            copier = _COPIERS.get(type(force))
            if copier is None:
                return None
            new = copier(force, index)
            _periodic_flag(force, new)
            new.setForceGroup(force.getForceGroup())
            new.setName(force.getName())
            restricted.addForce(new)
    except _Straddles:
        return None
    return restricted


def _virtual_sites_cross(system: openmm.System, chosen: np.ndarray) -> bool:
    """True if a chosen particle is a virtual site, or a left-out virtual site is built from a chosen one (its
    interactions would then couple chosen particles through the chain rule)."""
    for i in range(system.getNumParticles()):
        if system.isVirtualSite(i):
            site = system.getVirtualSite(i)
            if chosen[i] or any(chosen[site.getParticle(k)] for k in range(site.getNumParticles())):
                return True
    return False


def restricted_context(context: openmm.Context, chosen: np.ndarray) -> Optional[openmm.Context]:
    """A Context of :func:`restrict_system` on the same platform (same properties where they apply), with the
    Context's box, global parameter values and integration force groups, or None when no exact restriction
    exists. Its positions are those of the chosen particles in ``context``."""
    system = restrict_system(context.getSystem(), chosen)
    if system is None:
        return None
    integrator = openmm.VerletIntegrator(0.001)
    integrator.setIntegrationForceGroups(context.getIntegrator().getIntegrationForceGroups())
    platform = context.getPlatform()
    properties = {name: platform.getPropertyValue(context, name) for name in platform.getPropertyNames()}
    try:
        probe = openmm.Context(system, integrator, platform, properties)
    except Exception:  # a property the new Context does not take (e.g. one only valid once)
        probe = openmm.Context(system, integrator, platform)
    state = context.getState(getPositions=True)
    probe.setPeriodicBoxVectors(*state.getPeriodicBoxVectors())
    for name, value in context.getParameters().items():
        if name in probe.getParameters():
            probe.setParameter(name, value)
    positions = state.getPositions(asNumpy=True)
    probe.setPositions(positions[np.asarray(chosen, dtype=bool)])
    return probe
