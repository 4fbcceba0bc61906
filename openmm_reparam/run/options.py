"""The options of a minimization: groups of settings, each a dataclass that holds its defaults (written once) and
checks its own values, composed into :class:`MinimizerOptions`.

The groups every run has are here (``run``, ``safety``, ``polish``); each method declares its own groups next to
its code (``Method.option_groups``, see :mod:`openmm_reparam.methods`), and the registry
(:mod:`.registry`) says which method uses which. ``MinimizerOptions.from_kwargs(method="adam", adam_lr=2e-3)``
builds the groups of one method from the flat names, which are unique across all groups and are the keyword
arguments of :func:`openmm_reparam.minimize`; a name that the method does not use raises TypeError naming the
methods that do; a former name (:mod:`.renames`) is translated with a FutureWarning. ``options.adam_lr`` reads a
flat name, ``options.coordinates`` a group.

Lengths in nm, energies in kJ/mol, forces in kJ/mol/nm, times in seconds.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, fields
from typing import Any, Dict, Iterable, Mapping, Optional

ENGINES = ("auto", "python", "cpp", "device")


def require(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless ``condition``: the value checks of the option groups."""
    if not condition:
        raise ValueError(message)


def require_ints(group: Any, names: Iterable[str], minimum: int = 0) -> None:
    for name in names:
        require(int(getattr(group, name)) >= minimum, f"option {name} must be >= {minimum}, got {getattr(group, name)}")


def require_positive(group: Any, names: Iterable[str], strict: bool = True) -> None:
    for name in names:
        value = float(getattr(group, name))
        require(value > 0 if strict else value >= 0,
                f"option {name} must be {'>' if strict else '>='} 0, got {getattr(group, name)}")


@dataclass
class RunOptions:
    """The run as a whole."""
    never_worse: bool = False      # also run plain L-BFGS from the start and keep the lower energy (doubles cost)
    time_budget: Optional[float] = None  # seconds for the whole run, baseline and polish included: every stage
    #                                      stops at the deadline ("deadline"), unconverged (None: no limit)
    engine: str = "auto"           # where the stages' iterations run: "python" (the reference), "cpp" (the compiled
    #                                plugin on the host), "device" (the plugin's device stages on the Context's OpenCL
    #                                or CUDA device, without a reporter) or "auto" (the device where the platform has
    #                                the stage and no reporter is given, else cpp where built, else python); a
    #                                choice the Context or the build cannot honour is an error before the run
    torch_threads: int = 1         # torch threads during the run (the networks are small; restored after)

    def __post_init__(self) -> None:
        require(self.engine in ENGINES, f"engine must be one of {ENGINES}, got {self.engine!r}")
        require(self.time_budget is None or self.time_budget >= 0, "time_budget must be >= 0 seconds")
        require_ints(self, ("torch_threads",), 1)


@dataclass
class SafetyOptions:
    """Guards against force-field singularities, and the constraint spring of the energy bridge."""
    collapse_distance: float = 0.07  # nm; closer atoms under a force spike mean a singularity was hit (0: off)
    collapse_force: float = 1e4      # kJ/mol/nm; the final check needs a force above this on such a contact
    constraint_stiffness: float = 1e4  # kJ/mol/nm^2, spring pulling unconstrained input onto the constraints
    far_atom_distance: float = 10.0  # nm; a start with a particle this far from all others is refused (0: off)

    def __post_init__(self) -> None:
        require_positive(self, ("collapse_distance", "collapse_force", "constraint_stiffness", "far_atom_distance"),
                         strict=False)


@dataclass
class PolishOptions:
    """``polish``: OpenMM's L-BFGS to the tolerance after the method (``polish_rounds``, ``polish_iterations``),
    finished by a projected L-BFGS where constraints keep OpenMM's above it (``polish_projected_*``; formerly
    ``finish_*``, still accepted with a FutureWarning; :func:`openmm_reparam.methods.lbfgs.polish`)."""
    polish: bool = True            # finish with OpenMM's L-BFGS to reach the tolerance
    polish_rounds: int = 3         # L-BFGS restarts at most while above the tolerance and still improving
    polish_iterations: int = 10000  # OpenMM L-BFGS iterations per call at most (each polish round, auto's lbfgs,
    #                                the collapse fallback): OpenMM's own minimizer has no limit by default
    polish_projected_steps: int = 2000  # max iterations of the projected L-BFGS that finishes the polish
    polish_projected_memory: int = 10  # its L-BFGS (s, y) pairs
    polish_projected_max_step: float = 0.03  # nm: its largest atom displacement of one step
    polish_projected_tolerance: float = 0.9  # it stops at this x the tolerance, for a margin

    def __post_init__(self) -> None:
        require_ints(self, ("polish_rounds", "polish_projected_steps"))
        require_ints(self, ("polish_projected_memory", "polish_iterations"), 1)
        require_positive(self, ("polish_projected_max_step", "polish_projected_tolerance"))


def typed_value(group: type, name: str, value: Any) -> Any:
    """``value`` as the type option ``name`` of dataclass ``group`` declares (int, float, bool, str, or Optional of
    one): a number given as text is converted; ValueError naming the option for anything else."""
    declared = typing.get_type_hints(group)[name]
    if declared is Any:  # an object option (a generator: a name, a factory or a torch.nn.Module), checked by its group
        return value
    optional = typing.get_origin(declared) is typing.Union
    kind = next(t for t in typing.get_args(declared) if t is not type(None)) if optional else declared
    if value is None and optional:
        return None
    if kind is bool:
        text = str(value).strip().lower()
        if isinstance(value, bool) or text in ("true", "false", "1", "0"):
            return value if isinstance(value, bool) else text in ("true", "1")
    elif kind in (int, float) and not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if number is not None and (kind is float or number.is_integer()):
            return kind(number)
    elif kind is str and isinstance(value, str):
        return value
    expected = {bool: "true or false", int: "an integer", float: "a number", str: "text"}[kind]
    raise ValueError(f"option {name} must be {expected}{' or none' if optional else ''}, got {value!r}")


def plain_value(value: Any) -> Any:
    """An option value as a report stores it: a number, text or None as is, an object (a generator's factory or
    network) by its name."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "__name__", type(value).__name__)


COMMON_GROUPS: Dict[str, type] = {"run": RunOptions, "safety": SafetyOptions, "polish": PolishOptions}


class MinimizerOptions:
    """The option groups of one method (``method``) or, with ``method=None``, of every registered method: see
    the module docstring. Unknown or unused names raise TypeError, bad values ValueError."""

    def __init__(self, groups: Optional[Mapping[str, Any]] = None, method: Optional[str] = None):
        from .registry import check_options, group_classes
        classes = group_classes(method)
        given = dict(groups or {})
        unknown = sorted(set(given) - set(classes))
        if unknown:
            raise TypeError(f"unknown option group(s) {unknown}; the groups are {sorted(classes)}")
        self.__dict__["method"] = method
        self.__dict__["_groups"] = {name: given.get(name) or cls() for name, cls in classes.items()}
        check_options(self)

    @classmethod
    def from_kwargs(cls, method: Optional[str] = None, **kwargs: Any) -> "MinimizerOptions":
        """Options from flat keyword arguments (the ``minimize(context, adam_lr=...)`` form); former names and values
        are translated with a FutureWarning (:mod:`.renames`)."""
        from .registry import group_classes, option_group, reject_unused
        from .renames import current_options
        classes = group_classes(method)
        kwargs = current_options(kwargs, {f.name for group in classes.values() for f in fields(group)}, stacklevel=4)
        reject_unused(method, kwargs, classes)
        grouped: Dict[str, Dict[str, Any]] = {}
        for name, value in kwargs.items():
            group = option_group(name)
            grouped.setdefault(group, {})[name] = typed_value(classes[group], name, value)
        return cls({group: classes[group](**values) for group, values in grouped.items()}, method)

    @classmethod
    def known(cls, method: Optional[str] = None) -> list:
        """Every flat option name (of ``method``; None: of every method)."""
        from .registry import group_classes
        return sorted(f.name for group in group_classes(method).values() for f in fields(group))

    def __getattr__(self, name: str) -> Any:
        groups = self.__dict__.get("_groups", {})
        if name in groups:
            return groups[name]
        for group in groups.values():
            if name in group.__dataclass_fields__:
                return getattr(group, name)
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("MinimizerOptions are read-only: build new ones with from_kwargs")

    def groups(self) -> Dict[str, Any]:
        """{group name: dataclass instance}."""
        return dict(self._groups)

    def to_dict(self) -> Dict[str, Any]:
        """Flat {name: value}, as the report stores them."""
        return {f.name: plain_value(getattr(group, f.name)) for group in self._groups.values() for f in fields(group)}

    def __repr__(self) -> str:
        return f"MinimizerOptions(method={self.method!r}, {self.to_dict()})"
