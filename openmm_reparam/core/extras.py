"""Optional dependencies: each belongs to an extra of the package (setup.py's ``extras_require``), and a missing
one is reported in one line that names the extra to install, instead of a traceback from deep inside a run."""
from __future__ import annotations

from importlib import import_module


class MissingDependencyError(ImportError):
    """An optional dependency is not installed (the message says which extra brings it)."""


def require(extra: str, *modules: str, purpose: str) -> None:
    """Import each of ``modules`` (``extra``'s packages); the first that fails raises MissingDependencyError:
    "``purpose`` needs the optional package M: pip install 'openmm-reparam[extra]'"."""
    for module in modules:
        try:
            import_module(module)
        except ImportError as error:
            raise MissingDependencyError(f"{purpose} needs the optional package {module.split('.')[0]!r} "
                                         f"({error}): pip install 'openmm-reparam[{extra}]'") from None
