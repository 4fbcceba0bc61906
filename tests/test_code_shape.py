"""The package keeps the shape the architecture asks for (docs/guide/architecture.rst): short functions and classes,
and layers that import only the layers below them, in every import form."""
import ast
import pathlib
from typing import Dict, List, Optional

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "openmm_reparam"

# layer -> the layers it may import (besides itself). The package's top-level modules (__init__, __main__,
# testing) may import everything; _cpp is the compiled plugin, which only the engines load.
ALLOWED = {
    "core": set(),
    "run": {"core"},
    "analysis": {"core"},
    "reparam": {"core", "run"},
    "engines": {"core", "run", "reparam", "_cpp"},
    "methods": {"core", "run", "reparam", "engines"},
    "api": {"core", "run", "reparam", "engines", "methods"},
    "app": {"core", "run", "reparam", "engines", "methods", "api", "analysis"},
}
TOP = ""  # the top-level modules


def test_no_function_over_60_lines_and_no_class_over_200():
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                length = node.end_lineno - node.lineno + 1
                if length > (200 if isinstance(node, ast.ClassDef) else 60):
                    too_long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({length} lines)")
    assert not too_long, "too long: " + "; ".join(too_long)


def _layer_of(parts: List[str]) -> str:
    """The layer of the package module ``openmm_reparam.<parts>``: its subpackage, or TOP."""
    return parts[0] if parts and (PACKAGE / parts[0]).is_dir() else TOP


def _imported_layers(relative: str, source: str) -> List[tuple]:
    """(line, layer) of every package module that the module at ``relative`` (a path inside the package)
    imports, at module level or inside functions: ``import openmm_reparam.x``, ``from openmm_reparam.x import``,
    ``from ..x.y import``, ``from .. import x``. The version string (``from .. import __version__``) is not a
    layer."""
    package = relative.split("/")[:-1]  # the module's package, as path parts inside openmm_reparam
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "openmm_reparam":
                    found.append((node.lineno, _layer_of(parts[1:])))
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        module = (node.module or "").split(".") if node.module else []
        if node.level == 0:
            if not module or module[0] != "openmm_reparam":
                continue
            base = module[1:]
        else:
            base = package[:len(package) - (node.level - 1)] + module
        for alias in node.names:
            if not base and alias.name == "__version__":
                continue
            found.append((node.lineno, _layer_of(base or [alias.name])))
    return found


def upward_imports(sources: Dict[str, str]) -> List[str]:
    """Every import in ``sources`` ({path inside the package: source}) of a layer its layer may not import."""
    wrong = []
    for relative, source in sources.items():
        parts = relative.split("/")
        layer = parts[0] if len(parts) > 1 else TOP
        if layer == TOP or layer == "_cpp":
            continue
        for line, target in _imported_layers(relative, source):
            if target != layer and target not in ALLOWED[layer]:
                wrong.append(f"{relative}:{line} ({layer}) imports {target or 'the top-level package'}")
    return wrong


def _package_sources() -> Dict[str, str]:
    return {str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")
            if "_cpp" not in path.relative_to(PACKAGE).parts}


def test_every_layer_is_known():
    layers = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
              and p.name != "data"}
    assert layers == set(ALLOWED), layers


def test_layers_import_only_downwards():
    wrong = upward_imports(_package_sources())
    assert not wrong, "upward imports: " + "; ".join(wrong)


def test_planted_upward_imports_are_caught_in_every_form():
    """The checker itself: each import form of a higher layer, planted in a lower one, is reported."""
    planted = {
        "core/planted_relative.py": "from ..methods.adam import AdamMethod\n",
        "run/planted_function.py": "def f():\n    from ..api import minimizer\n    return minimizer\n",
        "engines/planted_absolute.py": "import openmm_reparam.methods.precon\n",
        "reparam/planted_from_absolute.py": "from openmm_reparam.engines import compiled\n",
        "methods/planted_package.py": "from .. import api\n",
        "analysis/planted_sideways.py": "from ..reparam.slow_modes import colour_atoms\n",
        "api/planted_top.py": "import openmm_reparam.app.cli\n",
    }
    wrong = upward_imports(planted)
    assert len(wrong) == len(planted), wrong
    allowed = {"methods/fine.py": "from ..engines import select_runners\nfrom . import base\n",
               "app/fine.py": "def f():\n    from ..api.minimizer import minimize\n"}
    assert upward_imports(allowed) == []
