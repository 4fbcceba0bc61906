"""Every setting of a minimization, with its default, in one table grouped by what it configures.

The groups are dataclasses; :class:`MinimizerOptions` holds one of each and also reads and writes them by their
flat names (``MinimizerOptions.from_kwargs(lr=1e-3, never_worse=True)``, ``options.lr``), which are unique
across groups and are the keyword arguments of :func:`openmm_reparam.minimize`. The compiled engine has no
defaults of its own: it is handed these values (see :mod:`openmm_reparam.engines.settings`).

Lengths in nm, energies in kJ/mol, forces in kJ/mol/nm, times in seconds.
"""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Optional

METHODS = ("auto", "gnn", "linear", "adam", "lbfgs", "precon")
DEPRECATED_METHODS = {"cg": "linear"}
ENGINES = ("auto", "python", "cpp")


def resolve_auto(system) -> str:
    """The method ``auto`` stands for on ``system``: what measured best for its class in the everyday benchmark
    suite (benchmarks/RESULTS.md). Periodic Systems (explicit solvent): Adam on the coordinates then the L-BFGS
    polish, 0.34-0.50x the time of OpenMM's L-BFGS alone on solvated proteins (3k-85k atoms) and lower in
    energy. Non-periodic Systems (vacuum, implicit solvent): ``precon`` (a few OpenMM L-BFGS iterations, then
    L-BFGS preconditioned by the force-constant Laplacian, then the polish), faster than OpenMM's L-BFGS alone on
    most noisy and unfolded implicit-solvent starts and lower in energy."""
    return "adam" if system.usesPeriodicBoundaryConditions() else "precon"


def canonical_method(method: str) -> str:
    """``method`` with deprecated aliases resolved (``cg`` → ``linear``, with a FutureWarning)."""
    if method in DEPRECATED_METHODS:
        new = DEPRECATED_METHODS[method]
        warnings.warn(f"method {method!r} is deprecated, use {new!r} (the linear slow-mode generator)",
                      FutureWarning, stacklevel=3)
        return new
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


@dataclass
class GeneratorOptions:
    """The generator network and its fit to the start (methods gnn, linear)."""
    n_modes: int = 30              # number of slow modes (capped at N - 1)
    hidden: int = 32               # GNN latent width
    layers: int = 2                # GNN graph-convolution layers
    fit_steps: int = 2000          # Adam steps fitting the GNN output to the start
    fit_lr: float = 1e-2
    fit_tolerance: float = 1e-4    # nm RMS: stop fitting below this
    reparam_atoms: str = "solute"  # "solute": waters and ions (molecules of <= 4 atoms) move as plain coordinates


@dataclass
class ReparamStageOptions:
    """``reparam``: Adam on the generator parameters."""
    steps: int = 1000              # max Adam steps
    lr: float = 1e-3               # Adam learning rate
    patience: int = 50             # early stopping: steps without relative improvement rel_tol
    clip_norm: float = 1e3         # gradient clipping (total 2-norm over the parameters; also the fine stage)
    rel_tol: float = 1e-5          # a step improves if energy < best - rel_tol * |best| (also the fine stage)
    restarts: int = 0              # latent-space restarts after it: perturb the latent, rerun, keep the best
    restart_noise: float = 0.05    # nm RMS per atom the latent perturbation of a restart moves the structure
    reparam_optimizer: str = "adam"  # "adam" | "gauss-newton" (metric-aware step; Python engine only)


@dataclass
class CoordinateStageOptions:
    """``fine`` (after reparam) or ``adam`` (the whole Adam run of method adam): Adam on the coordinates."""
    fine_steps: int = 1000
    fine_lr: float = 1e-3          # nm per step, roughly: Adam's steps are about lr in size
    fine_patience: int = 50


@dataclass
class SlowModeOptions:
    """The force-constant graph and its lowest Laplacian modes (:func:`compute_slow_modes`)."""
    slow_modes: str = "auto"       # "auto" | "exact" | "sparse"
    hessian_samples: int = 1       # samples (the start, then perturbed copies) averaged into the force constants
    hessian_perturbation: float = 0.005  # nm, size of the random sample perturbations


@dataclass
class PreconOptions:
    """``precon``: L-BFGS on the coordinates preconditioned by the force-constant Laplacian (optimize/precon.py)."""
    precon_steps: int = 10000      # max iterations
    precon_memory: int = 10        # L-BFGS (s, y) pairs kept
    precon_mu: Optional[float] = None  # kJ/mol/nm^2, the shift of P = L + mu I (None: estimated, sine test)
    precon_rebuild_distance: float = 0.5  # nm: rebuild P when an atom moved farther since the last build
    precon_cutoff: float = 0.25    # nm: atom pairs coupled in the force-constant matrix (bonds, angles)
    precon_max_step: float = 0.03  # nm: the largest atom displacement of one step
    precon_tolerance: float = 0.5  # the stage stops at this x the tolerance, leaving the polish little to do
    precon_declash: int = 20       # OpenMM L-BFGS iterations first ("declash"; 0: none): from a clash-laden start
    #                                the long preconditioned steps can push a planar group through its plane


@dataclass
class SafetyOptions:
    """Guards against force-field singularities, and the constraint spring of the reparametrized stage."""
    collapse_distance: float = 0.07  # nm; closer atoms under a force spike mean a singularity was hit (0: off)
    collapse_force: float = 1e4      # kJ/mol/nm; the final check needs a force above this on such a contact
    spike_factor: float = 3.0        # a step is suspect when its largest atomic force is this x the calmest seen
    constraint_stiffness: float = 1e4  # kJ/mol/nm^2, spring pulling generator output onto the constraints


@dataclass
class RunOptions:
    """The run as a whole."""
    polish: bool = True            # finish with OpenMM's L-BFGS to reach the tolerance
    polish_rounds: int = 3         # L-BFGS restarts at most while above the tolerance and still improving
    never_worse: bool = False      # also run plain L-BFGS from the start and keep the lower energy (doubles cost)
    time_budget: Optional[float] = None  # seconds for everything before the polish (None: no limit)
    reparam_share: float = 0.7     # share of the remaining time budget the reparam stage may use
    progress_window: int = 0       # steps: an Adam stage ends when its energy fell less over this many steps...
    progress_fraction: float = 0.0  # ...than this x the most it fell over any such window (0 or window 0: off)
    engine: str = "auto"           # "auto" | "python" | "cpp"
    torch_threads: int = 1         # torch threads during the run (the networks are small; restored after)


GROUPS = {"generator": GeneratorOptions, "reparam": ReparamStageOptions, "coordinates": CoordinateStageOptions,
          "modes": SlowModeOptions, "safety": SafetyOptions, "run": RunOptions,
          "precon": PreconOptions}
_GROUP_OF = {f.name: group for group, cls in GROUPS.items() for f in fields(cls)}
_NON_NEGATIVE_INTS = ("steps", "fine_steps", "patience", "fine_patience", "fit_steps", "hessian_samples",
                      "polish_rounds", "restarts", "precon_declash")
_POSITIVE = ("lr", "fine_lr", "fit_lr", "clip_norm", "spike_factor", "restart_noise")
_NON_NEGATIVE = ("rel_tol", "fit_tolerance", "hessian_perturbation", "collapse_distance", "collapse_force",
                 "constraint_stiffness")


@dataclass
class MinimizerOptions:
    """All settings, by group; see the module docstring. Unknown names raise TypeError, bad values ValueError."""
    generator: GeneratorOptions = field(default_factory=GeneratorOptions)
    reparam: ReparamStageOptions = field(default_factory=ReparamStageOptions)
    coordinates: CoordinateStageOptions = field(default_factory=CoordinateStageOptions)
    modes: SlowModeOptions = field(default_factory=SlowModeOptions)
    safety: SafetyOptions = field(default_factory=SafetyOptions)
    run: RunOptions = field(default_factory=RunOptions)
    precon: PreconOptions = field(default_factory=PreconOptions)

    def __post_init__(self) -> None:
        flat = self.to_dict()
        for name in _NON_NEGATIVE_INTS:
            if int(flat[name]) < 0:
                raise ValueError(f"option {name} must be >= 0, got {flat[name]}")
        for name in _POSITIVE:
            if not float(flat[name]) > 0:
                raise ValueError(f"option {name} must be > 0, got {flat[name]}")
        for name in _NON_NEGATIVE:
            if not float(flat[name]) >= 0:
                raise ValueError(f"option {name} must be >= 0, got {flat[name]}")
        if flat["n_modes"] < 1 or flat["hidden"] < 3 or flat["layers"] < 0:
            raise ValueError("n_modes must be >= 1, hidden >= 3 and layers >= 0")
        if flat["reparam_atoms"] not in ("solute", "all"):
            raise ValueError(f"reparam_atoms must be 'solute' or 'all', got {flat['reparam_atoms']!r}")
        if flat["slow_modes"] not in ("auto", "exact", "sparse"):
            raise ValueError(f"slow_modes must be 'auto', 'exact' or 'sparse', got {flat['slow_modes']!r}")
        if flat["engine"] not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {flat['engine']!r}")
        if flat["reparam_optimizer"] not in ("adam", "gauss-newton"):
            raise ValueError(f"reparam_optimizer must be 'adam' or 'gauss-newton', got {flat['reparam_optimizer']!r}")
        if flat["reparam_optimizer"] == "gauss-newton" and flat["engine"] == "cpp":
            raise ValueError("reparam_optimizer='gauss-newton' runs on the Python engine only: use engine='auto' "
                             "(the compiled engine then runs the other stages) or engine='python'")
        if flat["time_budget"] is not None and not flat["time_budget"] >= 0:
            raise ValueError("time_budget must be >= 0 seconds")
        if int(flat["progress_window"]) < 0 or not 0 <= flat["progress_fraction"] <= 1:
            raise ValueError("progress_window must be >= 0 and progress_fraction within [0, 1]")
        if not 0 <= flat["reparam_share"] <= 1:
            raise ValueError("reparam_share must be within [0, 1]")
        if int(flat["torch_threads"]) < 1:
            raise ValueError("torch_threads must be >= 1")
        _check_precon(flat)

    @classmethod
    def known(cls) -> list:
        """Every flat option name."""
        return sorted(_GROUP_OF)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "MinimizerOptions":
        """Options from flat keyword arguments (the ``minimize(context, lr=...)`` form)."""
        unknown = sorted(set(kwargs) - set(_GROUP_OF))
        if unknown:
            raise TypeError(f"unknown minimizer option(s) {unknown}; known options: {cls.known()}")
        groups = {group: cls_(**{k: v for k, v in kwargs.items() if _GROUP_OF[k] == group})
                  for group, cls_ in GROUPS.items()}
        return cls(**groups)

    def __getattr__(self, name: str) -> Any:
        group = _GROUP_OF.get(name)
        if group is None:
            raise AttributeError(name)
        return getattr(getattr(self, group), name)

    def to_dict(self) -> Dict[str, Any]:
        """Flat {name: value}, as the report stores them."""
        return {name: value for group in GROUPS for name, value in asdict(getattr(self, group)).items()}


def _check_precon(flat: Dict[str, Any]) -> None:
    """Raise ValueError on a bad ``precon_*`` value."""
    if int(flat["precon_steps"]) < 0 or int(flat["precon_memory"]) < 1:
        raise ValueError("precon_steps must be >= 0 and precon_memory >= 1")
    if flat["precon_mu"] is not None and not float(flat["precon_mu"]) > 0:
        raise ValueError(f"precon_mu must be > 0 or None, got {flat['precon_mu']}")
    for name in ("precon_rebuild_distance", "precon_cutoff", "precon_max_step", "precon_tolerance"):
        if not float(flat[name]) > 0:
            raise ValueError(f"option {name} must be > 0, got {flat[name]}")
