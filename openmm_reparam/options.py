"""Settings of a reparametrized minimization, with their defaults and validation."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, Optional

METHODS = ("gnn", "cg", "adam", "lbfgs")
ENGINES = ("auto", "python", "cpp")


@dataclass
class MinimizerOptions:
    """Every knob of the staged run. Lengths in nm, energies in kJ/mol, times in seconds.

    Stages: slow modes -> fit (gnn) -> ``reparam`` (Adam on the generator, gnn/cg) -> ``fine`` (Adam on the
    coordinates) -> ``polish`` (OpenMM's L-BFGS to the tolerance). With ``never_worse`` a plain L-BFGS run from
    the same start is also made and the lower of the two results is kept.
    """
    # reparametrized stage
    steps: int = 1000              # max Adam steps on the generator parameters
    lr: float = 1e-3               # Adam learning rate for the generator
    patience: int = 50             # early stopping: steps without relative improvement rel_tol
    clip_norm: float = 1e3         # gradient clipping (total 2-norm over the generator parameters)
    rel_tol: float = 1e-5          # a step improves if loss < best - rel_tol * |best|
    # fine stage (Adam on coordinates; the whole run for method "adam")
    fine_steps: int = 1000
    fine_lr: float = 1e-3          # nm per step, roughly: Adam's steps are about lr in size
    fine_patience: int = 50
    # generator
    n_modes: int = 30              # number of slow modes (capped at N - 1)
    hidden: int = 32               # GNN latent width
    layers: int = 2                # GNN graph-convolution layers
    fit_steps: int = 2000          # Adam steps fitting the GNN output to the start
    fit_lr: float = 1e-2
    fit_tolerance: float = 1e-4    # nm RMS: stop fitting below this
    # slow modes
    slow_modes: str = "auto"       # "auto" | "exact" | "sparse"
    hessian_samples: int = 1       # samples (the start, then perturbed copies) averaged into the force-constant matrix
    hessian_perturbation: float = 0.005  # nm, size of the random sample perturbations
    # safety
    collapse_distance: float = 0.07  # nm; closer atoms mean a force-field singularity was hit (see stages)
    collapse_force: float = 1e4      # kJ/mol/nm; ...when one of them feels more (final check; 0 for any)
    # constraints
    constraint_stiffness: float = 1e4  # kJ/mol/nm^2, spring pulling generator output onto the constraints
    # run control
    polish: bool = True            # finish with OpenMM's L-BFGS to reach the tolerance
    never_worse: bool = True       # also run plain L-BFGS from the start; keep the lower energy
    time_budget: Optional[float] = None  # seconds for the reparam+fine stages together (None: no limit)
    engine: str = "auto"           # "auto" | "python" | "cpp"
    torch_threads: int = 1         # torch threads during the run (the networks are small; restored after)

    def __post_init__(self) -> None:
        for name in ("steps", "fine_steps", "patience", "fine_patience", "fit_steps", "hessian_samples"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"option {name} must be >= 0, got {getattr(self, name)}")
        for name in ("lr", "fine_lr", "fit_lr", "clip_norm"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"option {name} must be > 0, got {getattr(self, name)}")
        if self.n_modes < 1 or self.hidden < 3 or self.layers < 0:
            raise ValueError("n_modes must be >= 1, hidden >= 3 and layers >= 0")
        if self.slow_modes not in ("auto", "exact", "sparse"):
            raise ValueError(f"slow_modes must be 'auto', 'exact' or 'sparse', got {self.slow_modes!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.time_budget is not None and self.time_budget < 0:
            raise ValueError("time_budget must be >= 0 seconds")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "MinimizerOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown minimizer option(s) {unknown}; known options: {sorted(known)}")
        return cls(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
