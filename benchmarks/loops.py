"""Synthetic loop systems of the paper's weak Lennard-Jones experiment, built as OpenMM Systems.

Reduced units: 1 length unit = 1 nm, 1 energy unit = 1 kJ/mol, every particle has mass 1 amu (masses do not
matter for minimization). A chain of ``n`` particles, *open* (bonds i-i+1 for i = 0..n-2, no n-1 -> 0 bond, as
in the paper's code, whose line-graph adjacency has no wrap-around); the "loops" are the hairpins that the
designed i-i+10 contacts close.

Energy terms, each *averaged over its pairs* as in the paper's code (``torch.mean`` of each term), which is
implemented by dividing every Custom*Force expression by its pair count:

* ``bond_lj`` (Bond + LJ loop):
    E = mean_{bonds} (r - 1)^2  +  0.1 mean_{i,i+10} V(r)  +  2.5e-3 mean_{other pairs} 1 / (r + 0.01)
* ``pure_lj`` (pure LJ loop): chain bonds are LJ too; as in the paper's code the chain (weight 1) and the
  designed contacts (weight 0.1) share one coupling matrix, so the LJ term is averaged over their union:
    E = [sum_{bonds} V(r) + 0.1 sum_{i,i+10} V(r)] / (n_bonds + n_contacts)  +  the same repulsion

with the soft-capped V(r) = 1/(r^12 + 0.01) - 1/(r^6 + 0.06). The cap gives V a spurious local minimum at
r = 0 (V(0) = 83.3, and below r of about 0.4 the force pulls a pair together): a pair that starts very close can
collapse there, which the contact metric reports separately. "Other pairs" are all pairs that are neither
chain bonds nor designed contacts (a CustomNonbondedForce with those pairs excluded, NoCutoff). A plain sum
instead of means would let the ~n^2/2 repulsive pairs dominate and change the landscape completely.

Starts are random Gaussian, sigma = n^(1/3) / 4 per coordinate, from ``numpy.random.default_rng(seed)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Tuple

import numpy as np
import openmm

LJ_EXPRESSION = "(1/(r^12 + 0.01) - 1/(r^6 + 0.06))"
CONTACT_STRENGTH = 0.1
REPULSION_STRENGTH = 2.5e-3
LOOP_OFFSET = 10
CONTACT_FACTOR = 1.25
VARIANTS = ("bond_lj", "pure_lj")


@dataclass
class LoopCase:
    """A loop benchmark system and its random start (positions in nm)."""

    name: str
    system: openmm.System
    start: np.ndarray
    contacts: np.ndarray  # (m, 2) designed i, i+10 pairs


def chain_bonds(n: int) -> List[Tuple[int, int]]:
    return [(i, i + 1) for i in range(n - 1)]


def designed_contacts(n: int, offset: int = LOOP_OFFSET) -> List[Tuple[int, int]]:
    return [(i, i + offset) for i in range(n - offset)]


def lj_potential(r: np.ndarray) -> np.ndarray:
    """The soft-capped LJ V(r) = 1/(r^12 + 0.01) - 1/(r^6 + 0.06) (reduced units)."""
    r = np.asarray(r, dtype=np.float64)
    return 1.0 / (r ** 12 + 0.01) - 1.0 / (r ** 6 + 0.06)


@lru_cache(maxsize=None)
def lj_minimum() -> float:
    """Distance of the minimum of V, found numerically (about 1.13)."""
    from scipy.optimize import minimize_scalar

    res = minimize_scalar(lambda r: float(lj_potential(r)), bounds=(0.5, 3.0), method="bounded",
                          options={"xatol": 1e-10})
    return float(res.x)


def create_loop_system(n: int, variant: str = "bond_lj") -> openmm.System:
    """The loop System of ``n`` particles; see the module docstring for the exact energy."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if n <= LOOP_OFFSET + 1:
        raise ValueError(f"n must exceed {LOOP_OFFSET + 1}")
    system = openmm.System()
    for _ in range(n):
        system.addParticle(1.0)
    bonds, contacts = chain_bonds(n), designed_contacts(n)

    if variant == "bond_lj":
        bond_force = openmm.CustomBondForce("k_bond*(r - 1)^2")
        bond_force.addGlobalParameter("k_bond", 1.0 / len(bonds))
        for i, j in bonds:
            bond_force.addBond(i, j, [])
        lj_force = openmm.CustomBondForce(f"k_lj*{LJ_EXPRESSION}")
        lj_force.addGlobalParameter("k_lj", CONTACT_STRENGTH / len(contacts))
        for i, j in contacts:
            lj_force.addBond(i, j, [])
        system.addForce(bond_force)
        system.addForce(lj_force)
    else:
        lj_force = openmm.CustomBondForce(f"weight*k_lj*{LJ_EXPRESSION}")
        lj_force.addGlobalParameter("k_lj", 1.0 / (len(bonds) + len(contacts)))
        lj_force.addPerBondParameter("weight")
        for i, j in bonds:
            lj_force.addBond(i, j, [1.0])
        for i, j in contacts:
            lj_force.addBond(i, j, [CONTACT_STRENGTH])
        system.addForce(lj_force)

    n_repulsive = n * (n - 1) // 2 - len(bonds) - len(contacts)
    repulsion = openmm.CustomNonbondedForce("k_rep/(r + 0.01)")
    repulsion.addGlobalParameter("k_rep", REPULSION_STRENGTH / n_repulsive)
    repulsion.setNonbondedMethod(openmm.CustomNonbondedForce.NoCutoff)
    for _ in range(n):
        repulsion.addParticle([])
    for i, j in bonds + contacts:
        repulsion.addExclusion(i, j)
    system.addForce(repulsion)
    return system


def random_start(n: int, seed: int) -> np.ndarray:
    """Gaussian start, sigma = n^(1/3)/4 per coordinate (nm), seeded."""
    return np.random.default_rng(seed).normal(scale=n ** (1.0 / 3.0) / 4.0, size=(n, 3))


def load_case(n: int, variant: str = "bond_lj", seed: int = 0) -> LoopCase:
    """The loop system plus the random start of this seed (each seed is a different start)."""
    return LoopCase(name=f"{variant}_n{n}", system=create_loop_system(n, variant), start=random_start(n, seed),
                    contacts=np.array(designed_contacts(n), dtype=int))


def loop_energy(x: np.ndarray, variant: str = "bond_lj") -> float:
    """The same energy in numpy (reduced units), to check the OpenMM System against."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    bonds, contacts = np.array(chain_bonds(n)), np.array(designed_contacts(n))
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
    rb, rc = dist[bonds[:, 0], bonds[:, 1]], dist[contacts[:, 0], contacts[:, 1]]
    if variant == "bond_lj":
        energy = np.mean((rb - 1) ** 2) + CONTACT_STRENGTH * np.mean(lj_potential(rc))
    else:
        energy = (np.sum(lj_potential(rb)) + CONTACT_STRENGTH * np.sum(lj_potential(rc))) / (len(rb) + len(rc))
    mask = np.triu(np.ones((n, n), dtype=bool), k=1)
    mask[bonds[:, 0], bonds[:, 1]] = False
    mask[contacts[:, 0], contacts[:, 1]] = False
    return float(energy + REPULSION_STRENGTH * np.mean(1.0 / (dist[mask] + 0.01)))


def loop_metrics(x: np.ndarray, contacts: np.ndarray) -> Dict[str, float]:
    """Fraction of designed contacts formed, i.e. within a factor 1.25 of the LJ minimum distance r0
    (r0 / 1.25 <= r <= 1.25 r0: a pair collapsed into the soft cap's spurious minimum at r = 0 is not a contact;
    those are counted in ``contacts_collapsed``, r < r0 / 1.25), and the mean contact and bond lengths."""
    x = np.asarray(x, dtype=np.float64)
    r = np.linalg.norm(x[contacts[:, 0]] - x[contacts[:, 1]], axis=1)
    bonds = np.linalg.norm(x[1:] - x[:-1], axis=1)
    r0 = lj_minimum()
    return {"contacts_formed": float(np.mean((r >= r0 / CONTACT_FACTOR) & (r <= CONTACT_FACTOR * r0))),
            "contacts_collapsed": float(np.mean(r < r0 / CONTACT_FACTOR)),
            "mean_contact_distance": float(np.mean(r)), "mean_bond_length": float(np.mean(bonds))}
