"""Former option names and values, kept for one release: each is translated to its current name (or value) with a
FutureWarning naming it, since the users who pass them (scripts, ``--option`` on the command line) must see it.

An option is named after the stage it sets, as ``result.stages`` names it: ``adam_*`` the stage of method adam,
``fine_*`` the coordinate stage after the reparametrized one (gnn, linear), ``declash_*`` the declash of method
precon, ``polish_*`` the polish (``polish_projected_*`` its projected L-BFGS). A former name that is still the
current name of another method's option (``fine_steps``: gnn's and linear's fine stage, formerly also adam's
steps) is translated only for a method that lacks it.
"""
from __future__ import annotations

import warnings
from typing import Any, Collection, Dict, Mapping, Tuple

#: former option name -> current name
OPTION_RENAMES: Dict[str, str] = {
    "fine_steps": "adam_steps", "fine_lr": "adam_lr", "fine_patience": "adam_patience",
    "fine_stop_at": "adam_stop_at",
    "precon_declash": "declash_steps", "precon_declash_by": "declash_by",
    "finish_steps": "polish_projected_steps", "finish_memory": "polish_projected_memory",
    "finish_max_step": "polish_projected_max_step", "finish_tolerance": "polish_projected_tolerance",
}

#: (option, former value) -> current value
VALUE_RENAMES: Dict[Tuple[str, str], str] = {("precon_matrix", "measured"): "finite-difference"}


def current_options(options: Mapping[str, Any], known: Collection[str], stacklevel: int = 3) -> Dict[str, Any]:
    """``options`` (flat name -> value) with former names and values that have a current one among ``known``
    (the names the method uses) translated, one FutureWarning each; TypeError where a former name and its
    current one are both given. Other names are left as they are (for the caller to accept or reject)."""
    result: Dict[str, Any] = {}
    for name, value in options.items():
        new = OPTION_RENAMES.get(name)
        if name not in known and new in known:
            if new in options:
                raise TypeError(f"option {name!r} is the former name of {new!r}: give only {new!r}")
            warnings.warn(f"option {name!r} is deprecated, use {new!r}", FutureWarning, stacklevel=stacklevel)
            name = new
        result[name] = current_value(name, value, stacklevel + 1)
    return result


def current_value(name: str, value: Any, stacklevel: int = 3) -> Any:
    """``value`` of option ``name``, a former value translated to the current one with a FutureWarning."""
    if isinstance(value, str) and (name, value) in VALUE_RENAMES:
        new = VALUE_RENAMES[(name, value)]
        warnings.warn(f"{name}={value!r} is deprecated, use {name}={new!r}", FutureWarning, stacklevel=stacklevel)
        return new
    return value


def former_names() -> Dict[str, str]:
    """{former name: current name}, for the options reference and the command line's help."""
    return dict(OPTION_RENAMES)
