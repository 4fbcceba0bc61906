"""What a minimization returns: per-stage statistics, the energy history and the final state."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from ..core.obstacles import Obstacle, describe_obstacles


@dataclass
class StageResult:
    """One stage of a run (e.g. "slow_modes", "fit", "reparam", "restart1", "fine", "adam", "declash",
    "precon_setup", "precon", "fire", "polish", "baseline", "lbfgs"; "start": the default left a converged start
    as it was)."""
    name: str
    iterations: int = 0
    energy_evaluations: int = 0
    wall_time: float = 0.0
    initial_energy: Optional[float] = None
    final_energy: Optional[float] = None
    collapsed: bool = False  # the stage stopped because atoms fell into a force-field singularity
    # why an iterating stage ended: converged (reached its force target), max_steps, patience, stalled (Adam's
    # progress rule), deadline (time budget), collapse (force-field singularity), reporter (the reporter asked),
    # stuck (no step lowers the energy), cap (maxIterations spent), undone (an OpenMM L-BFGS round that ended
    # higher than it started, taken back); "" for set-up stages and OpenMM's L-BFGS
    stop_reason: str = ""
    # device stages: evaluations whose forces overflowed the device's fixed-point force sums (a severe clash) and
    # were computed again on the CPU platform, as OpenMM's LocalEnergyMinimizer does (0: none)
    cpu_force_evaluations: int = 0
    # the generator of a reparametrized method's fit, reparam and restart stages ("gnn", "linear", or the name of
    # the user's generator, :func:`openmm_reparam.register_generator`); "" for the other stages
    generator: str = ""
    # where the stage's iterations ran: "python" (the reference), "cpp" (the compiled plugin on the host), the
    # device ("opencl", "cuda"), "openmm" (OpenMM's LocalEnergyMinimizer); parts joined by "+" (a polish of
    # OpenMM's L-BFGS finished by the projected L-BFGS: "openmm+cpp"); "" for set-up stages (slow_modes, fit,
    # precon_setup: Python around the Context's evaluations) and for a polish that had nothing to do
    engine: str = ""


@dataclass
class HistoryPoint:
    """The energy (kJ/mol) at one iteration of a stage; ``time`` is seconds since the run began."""
    stage: str
    iteration: int
    time: float
    energy: float


@dataclass
class MinimizationResult:
    """Outcome of :func:`openmm_reparam.minimize`. Energies in kJ/mol, forces in kJ/mol/nm.

    ``rms_force`` is OpenMM's convergence measure ‖F‖₂/√N over the movable particles; ``converged`` is
    ``rms_force <= tolerance``. ``selected`` says which trajectory was kept: "method", or "baseline" when the
    plain L-BFGS run from the same start (``never_worse``) ended lower. ``obstacles``: when not converged, the
    atoms that hold the result back (largest residual forces first, each with its nearest non-bonded atom;
    :mod:`openmm_reparam.core.obstacles`, :meth:`held_back_by` names them); empty when converged.
    """
    method: str                    # the method that ran ("auto" resolved)
    seed: int
    tolerance: float
    initial_energy: float
    final_energy: float
    rms_force: float
    max_force: float
    converged: bool
    stages: List[StageResult] = field(default_factory=list)
    history: List[HistoryPoint] = field(default_factory=list)
    baseline_energy: Optional[float] = None
    selected: str = "method"
    # where the package's own stage iterations ran: the engines of the stages (StageResult.engine) but OpenMM's
    # L-BFGS, sorted and joined by "+" ("cpp", "opencl", "cpp+python" for a Gauss-Newton reparam stage before a
    # compiled fine stage); the engine chosen when only OpenMM's L-BFGS ran (method lbfgs)
    engine: str = "python"
    interrupted: bool = False
    options: Dict[str, Any] = field(default_factory=dict)
    requested_method: str = ""     # the method asked for (e.g. "auto")
    # latent-space restarts (option ``restarts``), one dict each: index, start_energy, final_energy,
    # displacement (nm RMS of the perturbation), kept (it ended below every earlier reparam/restart stage)
    restarts: List[Dict[str, Any]] = field(default_factory=list)
    obstacles: List[Obstacle] = field(default_factory=list)

    @property
    def wall_time(self) -> float:
        return sum(stage.wall_time for stage in self.stages)

    @property
    def iterations(self) -> int:
        return sum(stage.iterations for stage in self.stages)

    @property
    def energy_evaluations(self) -> int:
        return sum(stage.energy_evaluations for stage in self.stages)

    @property
    def generator(self) -> str:
        """The generator the reparametrized stages ran ("" for the methods without one)."""
        return next((s.generator for s in self.stages if s.generator), "")

    def stage(self, name: str) -> Optional[StageResult]:
        return next((s for s in self.stages if s.name == name), None)

    def held_back_by(self, topology: Any) -> str:
        """One line naming the atoms that hold the result back, with residue and atom names from ``topology``
        (an ``openmm.app.Topology``); "" when converged."""
        return describe_obstacles(self.obstacles, topology)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serializable dict of everything above, plus the totals."""
        data = asdict(self)
        data.update(wall_time=self.wall_time, iterations=self.iterations,
                    energy_evaluations=self.energy_evaluations, generator=self.generator)
        return data

    def __str__(self) -> str:
        lines = [f"{self.method}: {self.initial_energy:.3f} -> {self.final_energy:.3f} kJ/mol, "
                 f"RMS force {self.rms_force:.3g} kJ/mol/nm (tolerance {self.tolerance:g}, "
                 f"{'converged' if self.converged else 'NOT converged'}), {self.wall_time:.2f} s"]
        for s in self.stages:
            lines.append(f"  {s.name:<10} {s.iterations:6d} it {s.energy_evaluations:6d} evals "
                         f"{s.wall_time:8.2f} s  E {s.final_energy if s.final_energy is not None else float('nan'):.3f}")
        return "\n".join(lines)
