"""Try openmm-reparam on an unmodified OpenMM script: ``patch()`` and ``python -m openmm_reparam run``.

    import openmm_reparam
    with openmm_reparam.patch(method="precon"):      # for a block
        simulation.minimizeEnergy()
    openmm_reparam.patch(never_worse=True)           # for the rest of the process ...
    openmm_reparam.unpatch()                         # ... or until this

    python -m openmm_reparam run [--method M] [--option KEY=VALUE ...] [--quiet] SCRIPT.py [ARGS...]

While a patch is active, ``openmm.app.Simulation.minimizeEnergy`` and ``openmm.LocalEnergyMinimizer.minimize``
call :func:`openmm_reparam.minimize` with the same ``tolerance``, ``maxIterations`` and ``reporter``, and each
call prints one line on stderr::

    openmm_reparam: Simulation.minimizeEnergy -> precon: -1234.5 -> -2345.6 kJ/mol, RMS force 4.1 kJ/mol/nm, 1.23 s

Options: the minimizer's keywords (``method`` and any option of that method), taken from the environment variable ``OPENMM_REPARAM_OPTIONS`` (``"method=precon,never_worse=1"``:
comma-separated ``KEY=VALUE``; values ``true``/``false``/``none``, numbers, or text) and then from the arguments,
which win. They are checked when the patch is made: a typo is an error before the script does any work.
``never_worse=1`` also runs OpenMM's own L-BFGS from the same start and keeps the lower energy, so the result is
never above what the unpatched script would have reached (at twice the cost).

Our own minimizer uses OpenMM's L-BFGS for its polish: calls made from inside it go to the original
``LocalEnergyMinimizer.minimize``, and so do the calls OpenMM's and PDBFixer's own code makes while building a
model (``Modeller.addHydrogens``, ``Modeller.addSolvent``, ``PDBFixer.addMissingAtoms`` relax the atoms they add):
only the script's own minimizations are replaced. Patches nest: the innermost active one decides the options; the originals
come back once the last is closed (``unpatch()`` closes them all).
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional, TextIO

import openmm
from openmm import app, unit

from .arguments import option_value

ENV_VAR = "OPENMM_REPARAM_OPTIONS"
PREFIX = "openmm_reparam"
_DEFAULT_TOLERANCE = 10 * unit.kilojoule_per_mole / unit.nanometer

_ORIGINALS: Dict[str, Any] = {}
_ACTIVE: List["Patch"] = []
_LOCK = threading.RLock()
_INSIDE = threading.local()


class PatchError(ValueError):
    """A bad option for the patch (unknown name, bad value, malformed ``OPENMM_REPARAM_OPTIONS``)."""


class Patch:
    """An active patch: ``close()`` (or leaving its ``with`` block) removes it. ``calls`` lists one dict per
    minimization it handled (where, method, energies, time)."""

    def __init__(self, options: Dict[str, Any], stream: Optional[TextIO] = None, quiet: bool = False):
        self.options = dict(options)
        self.stream = stream
        self.quiet = bool(quiet)
        self.calls: List[Dict[str, Any]] = []
        self.active = False

    def __enter__(self) -> "Patch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Remove this patch; the last one to go restores OpenMM's own minimizer."""
        with _LOCK:
            if self in _ACTIVE:
                _ACTIVE.remove(self)
            self.active = False
            if not _ACTIVE:
                _restore()

    def summary(self, call: Dict[str, Any]) -> str:
        """The one-line summary of one minimization."""
        return (f"{PREFIX}: {call['caller']} -> {call['method']}: {call['initial_energy']:.1f} -> "
                f"{call['final_energy']:.1f} kJ/mol, RMS force {call['rms_force']:.3g} kJ/mol/nm, "
                f"{call['wall_time']:.2f} s" + (" (kept OpenMM's L-BFGS result: it was lower)"
                                                 if call["selected"] == "baseline" else ""))

    def minimize(self, caller: str, context: openmm.Context, tolerance: Any, max_iterations: int,
                 reporter: Any) -> Any:
        """Run our minimizer on ``context`` with this patch's options and print the summary line."""
        from ..api.minimizer import minimize
        start = time.perf_counter()
        _INSIDE.depth = getattr(_INSIDE, "depth", 0) + 1
        try:
            result = minimize(context, tolerance, max_iterations, reporter, **self.options)
        finally:
            _INSIDE.depth -= 1
        call = {"caller": caller, "method": getattr(result, "method", self.options.get("method", "auto")),
                "initial_energy": float(result.initial_energy), "final_energy": float(result.final_energy),
                "rms_force": float(result.rms_force), "converged": bool(result.converged),
                "iterations": int(getattr(result, "iterations", 0)), "selected": getattr(result, "selected", ""),
                "wall_time": time.perf_counter() - start}
        self.calls.append(call)
        if not self.quiet:
            stream = sys.stderr if self.stream is None else self.stream
            print(self.summary(call), file=stream, flush=True)
        return result


def patch(stream: Optional[TextIO] = None, quiet: bool = False, **options: Any) -> Patch:
    """Make ``Simulation.minimizeEnergy`` and ``LocalEnergyMinimizer.minimize`` use openmm-reparam until the
    returned handle is closed (a context manager) or :func:`unpatch` is called. ``options``: minimizer keywords,
    over those of ``$OPENMM_REPARAM_OPTIONS``; ``stream``: where the summary lines go (stderr); ``quiet``: none."""
    merged = dict(options_from_environment())
    merged.update(options)
    check_options(merged)
    handle = Patch(merged, stream=stream, quiet=quiet)
    with _LOCK:
        _install()
        _ACTIVE.append(handle)
        handle.active = True
    return handle


def unpatch() -> None:
    """Remove every active patch and restore OpenMM's own minimizer (a no-op when none is active)."""
    with _LOCK:
        for handle in list(_ACTIVE):
            handle.close()
        _restore()


def is_patched() -> bool:
    """Whether a patch is active now."""
    return bool(_ACTIVE)


def parse_options(text: str, source: str = ENV_VAR) -> Dict[str, Any]:
    """``"method=precon,never_worse=1"`` as ``{"method": "precon", "never_worse": 1}``."""
    options: Dict[str, Any] = {}
    for item in (part.strip() for part in (text or "").split(",")):
        if not item:
            continue
        key, separator, value = item.partition("=")
        if not separator or not key.strip():
            raise PatchError(f"{source}: expected KEY=VALUE, got {item!r}")
        options[key.strip().replace("-", "_")] = option_value(value.strip())
    return options


def options_from_environment() -> Dict[str, Any]:
    """The options in ``$OPENMM_REPARAM_OPTIONS`` (none when unset)."""
    return parse_options(os.environ.get(ENV_VAR, ""))




def check_options(options: Dict[str, Any]) -> None:
    """Raise :class:`PatchError` unless ``options`` are a valid method and minimizer options."""
    from ..run.options import MinimizerOptions
    from ..run.registry import get_method
    rest = {k: v for k, v in options.items() if k not in ("method", "seed")}
    try:
        method = get_method(str(options.get("method", "auto")), warn=False).name
        int(options.get("seed", 0))
        MinimizerOptions.from_kwargs(method=method, **rest)
    except (TypeError, ValueError) as error:
        raise PatchError(f"bad openmm_reparam option: {' '.join(str(error).split())}") from None


# --- the replacements ----------------------------------------------------------------------------------------

def _local_energy_minimizer(context: openmm.Context, tolerance: Any = _DEFAULT_TOLERANCE, maxIterations: int = 0,
                            reporter: Any = None) -> None:
    """``LocalEnergyMinimizer.minimize`` while patched (the original inside our own minimizer, and for OpenMM's
    and PDBFixer's model building)."""
    if getattr(_INSIDE, "depth", 0) > 0 or not _ACTIVE or _called_by_model_building(sys._getframe(1)):
        original = _ORIGINALS.get("LocalEnergyMinimizer.minimize") or openmm.LocalEnergyMinimizer.__dict__["minimize"]
        return original.__func__(context, tolerance, maxIterations, reporter)
    _ACTIVE[-1].minimize("LocalEnergyMinimizer.minimize", context, tolerance, maxIterations, reporter)
    return None


#: Modules whose calls of ``LocalEnergyMinimizer.minimize`` relax atoms they just built, not the script's system.
MODEL_BUILDERS = ("openmm.app.", "pdbfixer.")


def _called_by_model_building(frame: Any) -> bool:
    return str(frame.f_globals.get("__name__", "")).startswith(MODEL_BUILDERS)


def _minimize_energy(self: app.Simulation, tolerance: Any = _DEFAULT_TOLERANCE, maxIterations: int = 0,
                     reporter: Any = None) -> None:
    """``Simulation.minimizeEnergy`` while patched: openmm-reparam on ``self.context``."""
    if not _ACTIVE:
        return _ORIGINALS["Simulation.minimizeEnergy"](self, tolerance, maxIterations, reporter)
    _ACTIVE[-1].minimize("Simulation.minimizeEnergy", self.context, tolerance, maxIterations, reporter)
    return None


def _install() -> None:
    if _ORIGINALS:
        return
    _ORIGINALS["LocalEnergyMinimizer.minimize"] = openmm.LocalEnergyMinimizer.__dict__["minimize"]
    _ORIGINALS["Simulation.minimizeEnergy"] = app.Simulation.__dict__["minimizeEnergy"]
    openmm.LocalEnergyMinimizer.minimize = staticmethod(_local_energy_minimizer)
    app.Simulation.minimizeEnergy = _minimize_energy


def _restore() -> None:
    if not _ORIGINALS:
        return
    openmm.LocalEnergyMinimizer.minimize = _ORIGINALS.pop("LocalEnergyMinimizer.minimize")
    app.Simulation.minimizeEnergy = _ORIGINALS.pop("Simulation.minimizeEnergy")


__all__ = ["patch", "unpatch", "is_patched", "Patch", "PatchError", "parse_options", "options_from_environment",
           "ENV_VAR"]
