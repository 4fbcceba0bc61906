"""torch before OpenMM's Torch plugin, whatever order a script imports them in.

OpenMM loads its plugin libraries when it is first imported; openmmtorch's (TorchForce kernels) only load if
libtorch is already in the process, and otherwise fail silently (``Platform.getPluginLoadFailures()``). torch is
slow to import, so ``import openmm_reparam`` does not import it; instead it watches for ``import openmmtorch``
(:func:`install`): torch is imported first, and the plugin libraries that failed to load earlier are loaded again.
"""
from __future__ import annotations

import importlib.abc
import re
import sys
from typing import Any, List, Optional

_retried: set = set()


def retry_failed_plugins() -> List[str]:
    """Load again each OpenMM plugin library that failed to load when openmm was imported (they load once libtorch
    is in the process); returns the paths that loaded. Does nothing before openmm is imported."""
    openmm = sys.modules.get("openmm")
    if openmm is None:
        return []
    loaded = []
    for failure in openmm.Platform.getPluginLoadFailures():
        match = re.match(r"Error loading library (.+?): ", failure)
        if match is None or match.group(1) in _retried:
            continue
        _retried.add(match.group(1))
        try:
            openmm.Platform.loadPluginLibrary(match.group(1))
            loaded.append(match.group(1))
        except Exception:  # still missing something other than libtorch: it stays unloaded, as before
            pass
    return loaded


def import_torch() -> Any:
    """``import torch``, then the OpenMM plugins that needed it (:func:`retry_failed_plugins`)."""
    import torch
    retry_failed_plugins()
    return torch


class _TorchBeforeOpenmmtorch(importlib.abc.MetaPathFinder):
    """Imports torch (:func:`import_torch`) when ``openmmtorch`` is first imported, then steps aside."""

    def find_spec(self, name: str, path: Optional[Any] = None, target: Optional[Any] = None) -> None:
        if name == "openmmtorch":
            uninstall()
            import_torch()
        return None  # the ordinary finders import openmmtorch itself


_finder = _TorchBeforeOpenmmtorch()


def install() -> None:
    """Watch for ``import openmmtorch`` (nothing to do once it is imported)."""
    if "openmmtorch" not in sys.modules and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
