"""Sphinx directive ``.. minimizer-options::``: every option of every registered method, read from the option
dataclasses at build time (name, type, default and the comment written beside the field), so the reference
cannot drift from the code."""
from __future__ import annotations

import ast
import inspect
import io
import textwrap
import tokenize
import typing
from dataclasses import MISSING, fields
from typing import Dict, List

from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

from rst_text import escape, indent, title


def field_comments(cls: type) -> Dict[str, str]:
    """{field name: its comment} for a dataclass: the comment on the field's line and the comment-only lines
    under it, up to the next statement."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # a class without source (built dynamically): no descriptions
        return {}
    body = ast.parse(source).body[0].body
    comments: Dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    statements = [node for node in body if not isinstance(node, ast.Expr)]
    result: Dict[str, str] = {}
    for index, node in enumerate(statements):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        end = statements[index + 1].lineno if index + 1 < len(statements) else max(comments, default=0) + 1
        lines = [comments[line] for line in range(node.lineno, end) if line in comments]
        result[node.target.id] = " ".join(line for line in lines if line)
    return result


def type_name(hint: object) -> str:
    """``int``, ``float``, ``bool``, ``str``, or ``X or None`` for ``Optional[X]``."""
    if typing.get_origin(hint) is typing.Union:
        names = [type_name(arg) for arg in typing.get_args(hint) if arg is not type(None)]
        return " or ".join(names) + " or None"
    return getattr(hint, "__name__", str(hint))


def default_of(field) -> object:
    if field.default is not MISSING:
        return field.default
    if field.default_factory is not MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return MISSING


def group_lines(group: str, cls: type, users: List[str], variants: Dict[str, type]) -> List[str]:
    """The reST of one option group: its docstring, the methods using it, one entry per option."""
    lines = title(f"Group ``{group}``", "-")
    doc = inspect.getdoc(cls) or ""
    if doc:
        lines += doc.splitlines() + [""]
    used_by = ", ".join(f"``{name}``" for name in users) if users else "every method"
    lines += [f"Used by {used_by}.", ""]
    hints = typing.get_type_hints(cls)
    comments = field_comments_of_hierarchy(cls)
    for field in fields(cls):
        lines.append(f"``{field.name}`` : {escape(type_name(hints[field.name]))} = ``{default_of(field)!r}``")
        lines += indent([escape(comments.get(field.name) or "(no description in the code)")])
        for method, variant in variants.items():
            value = default_of({f.name: f for f in fields(variant)}[field.name])
            if value != default_of(field):
                lines += indent(["", f"Default for method ``{method}``: ``{value!r}``."])
        lines.append("")
    return lines


def field_comments_of_hierarchy(cls: type) -> Dict[str, str]:
    """Field comments of ``cls`` and its dataclass bases (a subclass that only changes a default keeps the
    base's description)."""
    comments: Dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if "__dataclass_fields__" in vars(klass):
            comments.update({k: v for k, v in field_comments(klass).items() if v})
    return comments


def reference_lines() -> List[str]:
    """The whole reference: the methods and their groups, then every group."""
    import openmm_reparam  # noqa: F401  (registers the package's methods)
    from openmm_reparam.run.options import COMMON_GROUPS
    from openmm_reparam.run.registry import registered

    methods = [m for m in registered() if m.name != "auto"]
    lines = [".. list-table::", "   :header-rows: 1", "", "   * - method", "     - what it does",
             "     - its own option groups"]
    for method in registered():
        groups = ", ".join(f"``{g}``" for g in method.option_groups) or "(none)"
        if method.name == "auto":
            groups = "those of every candidate it may pick"
        lines += [f"   * - ``{method.name}``", f"     - {escape(method.summary)}", f"     - {groups}"]
    lines += ["", "Every method also has the common groups "
              + ", ".join(f"``{g}``" for g in COMMON_GROUPS) + ".", ""]
    groups: Dict[str, Dict[str, type]] = {g: {} for g in COMMON_GROUPS}
    for method in methods:
        for group, cls in method.option_groups.items():
            groups.setdefault(group, {})[method.name] = cls
    for group, by_method in groups.items():
        if group in COMMON_GROUPS:
            base, users, variants = COMMON_GROUPS[group], [], {}
        else:
            base = next(c for c in by_method.values() if all(issubclass(o, c) for o in by_method.values()))
            users = list(by_method)
            variants = {m: c for m, c in by_method.items() if c is not base}
        lines += group_lines(group, base, users, variants)
    return lines + former_names_lines()


def former_names_lines() -> List[str]:
    """The former option names and values, still accepted with a FutureWarning (:mod:`openmm_reparam.run.renames`)."""
    from openmm_reparam.run.renames import OPTION_RENAMES, VALUE_RENAMES

    lines = title("Former names", "-")
    lines += ["These names and values are still accepted, by ``minimize`` and ``--option`` alike, with a "
              "``FutureWarning`` naming the current one, and will be removed in a later release. "
              "``result.options`` and the reports record the current names. A former name that is still the "
              "current name of another method's option (``fine_steps``) is translated only for the methods that "
              "lack it (``adam``, and ``auto``, whose candidates include adam but not gnn).", "",
              ".. list-table::", "   :header-rows: 1", "", "   * - former", "     - current"]
    for old, new in OPTION_RENAMES.items():
        lines += [f"   * - ``{old}``", f"     - ``{new}``"]
    for (option, old), new in VALUE_RENAMES.items():
        lines += [f"   * - ``{option}={old!r}``", f"     - ``{option}={new!r}``"]
    return lines + [""]


class MinimizerOptionsDirective(SphinxDirective):
    """``.. minimizer-options::`` renders :func:`reference_lines`."""

    has_content = False

    def run(self):
        for module in ("openmm_reparam.run.options", "openmm_reparam.run.registry", "openmm_reparam.run.renames"):
            self.env.note_dependency(inspect.getsourcefile(__import__(module, fromlist=["_"])))
        node = nested_parse_source(self, reference_lines())
        return node.children


def nested_parse_source(directive: SphinxDirective, lines: List[str]):
    """Parse generated reST lines into a container node (titles allowed)."""
    from docutils import nodes
    container = nodes.section()
    container.document = directive.state.document
    nested_parse_with_titles(directive.state, StringList(lines, source="(generated)"), container)
    return container


def setup(app: Sphinx) -> dict:
    app.add_directive("minimizer-options", MinimizerOptionsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
