"""The registry of minimization methods: ``register_method`` adds one, ``get_method`` finds one by name.

A method is an object with a ``name``, its ``option_groups`` ({group name: dataclass}) and a ``run(state)``
(see :class:`openmm_reparam.methods.base.Method`). The package registers its own methods when
:mod:`openmm_reparam.methods` is imported (the first lookup here does that); other packages can register
theirs by calling :func:`register_method`, or through an ``openmm_reparam.methods`` entry point whose object is a
Method subclass or instance (loaded the first time a name is looked up), so that the command line finds them
too. Every method's options are composed with the common groups of :mod:`.options`.

The generators of the reparametrized methods are registered here as well (:func:`register_generator`).
"""
from __future__ import annotations

import warnings
from dataclasses import fields
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

ENTRY_POINT_GROUP = "openmm_reparam.methods"
#: the package's own methods, registered on the first lookup, like the plug-ins (importing them imports torch,
#: which ``import openmm_reparam`` and ``openmm-reparam --help`` leave out)
BUILTIN_METHODS = "openmm_reparam.methods"

_METHODS: Dict[str, Any] = {}
_ALIASES: Dict[str, str] = {}      # deprecated name -> current name
_GROUP_OF: Dict[str, str] = {}     # flat option name -> group name, across every method
_entry_points_loaded = False


def register_method(method: Any, *, replace: bool = False, aliases: Iterable[str] = ()) -> Any:
    """Register ``method`` (a Method subclass or instance) under ``method.name``; returns the instance.
    ``aliases``: deprecated names that resolve to it with a FutureWarning. Its flat option names must not
    name another group's option; re-registering a name needs ``replace=True``."""
    _load_entry_points()  # the package's own first: a replacement registered now stays the one in use
    instance = method() if isinstance(method, type) else method
    name = getattr(instance, "name", "")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a method needs a name that is an identifier, got {name!r}")
    if name in _METHODS and not replace:
        raise ValueError(f"method {name!r} is already registered (pass replace=True to replace it)")
    _check_groups(name, instance.option_groups)
    _METHODS[name] = instance
    for alias in aliases:
        _ALIASES[alias] = name
    return instance


def unregister_method(name: str) -> None:
    """Remove method ``name`` and its aliases (the package's own methods included)."""
    _METHODS.pop(name, None)
    for alias in [a for a, target in _ALIASES.items() if target == name]:
        del _ALIASES[alias]


def get_method(name: str, warn: bool = True) -> Any:
    """The registered method called ``name`` (a deprecated alias resolves, with a FutureWarning if ``warn``)."""
    _load_entry_points()
    if name in _ALIASES:
        new = _ALIASES[name]
        if warn:
            warnings.warn(f"method {name!r} is deprecated, use {new!r}", FutureWarning, stacklevel=3)
        name = new
    if name not in _METHODS:
        raise ValueError(f"method must be one of {method_names()}, got {name!r}")
    return _METHODS[name]


def method_names() -> Tuple[str, ...]:
    """The registered method names, in registration order."""
    _load_entry_points()
    return tuple(_METHODS)


def deprecated_names() -> Tuple[str, ...]:
    return tuple(_ALIASES)


def registered() -> List[Any]:
    _load_entry_points()
    return list(_METHODS.values())


def group_classes(method: Optional[str] = None) -> Dict[str, type]:
    """{group: dataclass} of ``method`` with the common groups (None: of every registered method; where two
    methods' classes for one group differ, e.g. a subclass with other defaults, the base class)."""
    from .options import COMMON_GROUPS
    classes = dict(COMMON_GROUPS)
    for instance in ([get_method(method, warn=False)] if method is not None else registered()):
        for group, cls in instance.option_groups.items():
            if group not in classes or issubclass(classes[group], cls):
                classes[group] = cls
    return classes


def option_group(name: str) -> str:
    from .options import COMMON_GROUPS
    for group, cls in COMMON_GROUPS.items():
        if name in cls.__dataclass_fields__:
            return group
    return _GROUP_OF[name]


def option_users(name: str) -> List[str]:
    """The registered methods whose groups have option ``name``."""
    return [m.name for m in registered()
            if any(name in cls.__dataclass_fields__ for cls in m.option_groups.values())]


def options_used(method: str, options: Mapping[str, Any]) -> Dict[str, Any]:
    """The entries of ``options`` (flat names) that ``method`` uses: for scripts that pass one set of options to
    several methods (benchmarks, comparisons). A former name the method has a current name for is translated, with
    a FutureWarning (:mod:`.renames`), unless the set also gives the current name: then the former name is another
    method's option there (``fine_steps`` for gnn beside ``adam_steps`` for adam) and is left out."""
    from .renames import OPTION_RENAMES, current_options
    known = {f.name for cls in group_classes(method).values() for f in fields(cls)}
    shared = {name: value for name, value in options.items()
              if name in known or OPTION_RENAMES.get(name) not in known or OPTION_RENAMES[name] not in options}
    return {name: value for name, value in current_options(shared, known).items() if name in known}


def reject_unused(method: Optional[str], kwargs: Mapping[str, Any], classes: Mapping[str, type]) -> None:
    """TypeError for a flat name that no group of ``method`` has: naming the methods that use it, or the known
    names when none does."""
    known = {f.name for cls in classes.values() for f in fields(cls)}
    for name in sorted(set(kwargs) - known):
        users = option_users(name)
        if users:
            raise TypeError(f"option {name!r} is not used by method {method!r}; it is an option of "
                            f"method{'s' if len(users) > 1 else ''} {', '.join(users)}")
        raise TypeError(f"unknown minimizer option {name!r}; known options: {sorted(known)}")


def check_options(options: Any) -> None:
    """The cross-group checks of the method(s) the options are for (``Method.check``)."""
    methods = [get_method(options.method, warn=False)] if options.method is not None else registered()
    for instance in methods:
        instance.check(options)


def _check_groups(name: str, groups: Mapping[str, type]) -> None:
    """Each flat option name belongs to one group name across all methods and the common groups."""
    from .options import COMMON_GROUPS
    for group, cls in groups.items():
        if group in COMMON_GROUPS:
            raise ValueError(f"method {name!r}: group {group!r} is a common group")
        for f in fields(cls):
            owner = _GROUP_OF.setdefault(f.name, group)
            clash = owner != group or any(f.name in c.__dataclass_fields__ for c in COMMON_GROUPS.values())
            if clash:
                raise ValueError(f"method {name!r}: option {f.name!r} of group {group!r} is already an option "
                                 f"of group {owner!r}")


def _load_entry_points() -> None:
    """Register the package's own methods, then those other packages declare under the
    ``openmm_reparam.methods`` entry point, once."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib import import_module
    from importlib.metadata import entry_points
    import_module(BUILTIN_METHODS)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_method(point.load())
        except Exception as error:  # one broken plug-in must not break the package
            warnings.warn(f"openmm-reparam: could not load method plug-in {point.name!r}: {error}")


# -- generators ---------------------------------------------------------------------------------------------
# The networks X = G_θ(Z) of the reparametrized methods, by name. A factory takes one
# :class:`openmm_reparam.reparam.custom.GeneratorInputs` (slow modes, start positions, seed, options) and returns
# a torch.nn.Module whose forward() gives the positions; the package's own (``gnn``, ``linear``) are registered
# on the first call here (or when :mod:`openmm_reparam.reparam` is imported), so that a replacement stays in use.
BUILTIN_GENERATORS = "openmm_reparam.reparam.custom"
_GENERATORS: Dict[str, Callable[[Any], Any]] = {}
_builtin_generators_loaded = False


def _load_builtin_generators() -> None:
    """Register the package's own generators, once (their module imports torch)."""
    global _builtin_generators_loaded
    if not _builtin_generators_loaded:
        _builtin_generators_loaded = True
        from importlib import import_module
        import_module(BUILTIN_GENERATORS)


def register_generator(name: str, factory: Callable[[Any], Any], *, replace: bool = False) -> Callable[[Any], Any]:
    """Register ``factory`` as generator ``name`` (what ``minimize(..., generator=name)`` takes); returns it.
    Re-registering a name needs ``replace=True``."""
    _load_builtin_generators()
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a generator needs a name that is an identifier, got {name!r}")
    if not callable(factory):
        raise TypeError(f"generator {name!r}: the factory must be callable, got {type(factory).__name__}")
    if name in _GENERATORS and not replace:
        raise ValueError(f"generator {name!r} is already registered (pass replace=True to replace it)")
    _GENERATORS[name] = factory
    return factory


def unregister_generator(name: str) -> None:
    """Remove generator ``name`` (the package's own included)."""
    _load_builtin_generators()
    _GENERATORS.pop(name, None)


def get_generator(name: str) -> Callable[[Any], Any]:
    """The factory registered as generator ``name``, or the one an import path ``"package.module:Name"`` names (a
    factory, or a torch.nn.Module class whose constructor takes the
    :class:`~openmm_reparam.reparam.custom.GeneratorInputs`): what the command
    line's ``--option generator=...`` and a batch's workers resolve, each in its own process."""
    _load_builtin_generators()
    if ":" in name:
        return import_generator(name)
    if name not in _GENERATORS:
        raise ValueError(f"generator must be one of {generator_names()} or an import path package.module:Name, "
                         f"got {name!r}")
    return _GENERATORS[name]


def import_generator(path: str) -> Callable[[Any], Any]:
    """The callable at ``path``, ``"package.module:Name"`` (``Name`` may be dotted: a class attribute); ValueError
    in one line when the module or the name is missing or the object is not callable."""
    from importlib import import_module
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"generator {path!r}: an import path is package.module:Name")
    try:
        target: Any = import_module(module_name)
    except ImportError as error:
        raise ValueError(f"generator {path!r}: cannot import module {module_name!r} ({error})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"generator {path!r}: module {module_name!r} has no {attribute!r}") from None
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"generator {path!r}: {attribute!r} must be a factory or a torch.nn.Module class, got "
                         f"{type(target).__name__}")
    return target


def generator_names() -> Tuple[str, ...]:
    """The registered generator names, in registration order."""
    _load_builtin_generators()
    return tuple(_GENERATORS)


def generator_name_of(factory: Any) -> Optional[str]:
    """The name ``factory`` is registered under (None when it is not registered)."""
    _load_builtin_generators()
    return next((name for name, registered in _GENERATORS.items() if registered is factory), None)
