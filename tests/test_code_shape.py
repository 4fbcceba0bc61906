"""The package keeps the shape the architecture asks for: short functions and classes (see README, Architecture)."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "openmm_reparam"


def test_no_function_over_60_lines_and_no_class_over_200():
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                length = node.end_lineno - node.lineno + 1
                if length > (200 if isinstance(node, ast.ClassDef) else 60):
                    too_long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({length} lines)")
    assert not too_long, "too long: " + "; ".join(too_long)


def test_layers_import_only_downwards():
    """core imports no other layer; nothing below app imports app; only the top level and app import the
    orchestrator (engines and reparam share only the result types and the recorder with optimize)."""
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        layer = parts[0] if len(parts) > 1 else ""
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level >= 2 and node.module):
                continue
            target = node.module
            where = f"{'/'.join(parts)} imports {target}"
            assert layer != "core", where
            assert not target.startswith("app") or layer == "app", where
            assert target != "optimize.orchestrator" or layer in ("app",), where
