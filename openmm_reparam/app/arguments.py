"""The argument parser of the ``openmm-reparam`` command: subcommands ``minimize`` and ``relax``, each for one
structure (``-o OUT``) or a batch (``--out-dir DIR``)."""
from __future__ import annotations

import argparse
from typing import Any

from ..run.registry import deprecated_names, method_names
from .prepare import BOX_SHAPES, FORCEFIELDS, IMPLICIT_SOLVENTS, SOLVENTS, WATER_MODELS
from .relax import MAX_OUTER_ITERATIONS
from .restraints import DEFAULT_STIFFNESS, RESTRAINT_CHOICES

PROG = "openmm-reparam"


class _MethodChoices:
    """The registered method names (deprecated ones included), looked up only when a value is checked or a
    subcommand's help is printed: the lookup imports the methods, and torch with them."""

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @staticmethod
    def _names() -> tuple:
        return method_names() + deprecated_names()


def build_parser(version: str) -> argparse.ArgumentParser:
    """The argument parser (subcommands ``minimize``, ``relax`` and ``run``: :func:`.cli.main` hands ``run`` to
    :mod:`.run`)."""
    parser = argparse.ArgumentParser(prog=PROG, description="Energy minimization for OpenMM by neural-network "
                                     "reparametrization over slow modes.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    m = commands.add_parser("minimize", help="prepare, minimize and report on PDB/mmCIF structures",
                            description="Prepare structures with PDBFixer, minimize them and write the results.")
    _add_inputs(m)
    _add_minimizer(m, default_method="auto", seed_help="random seed: where the preparation places new atoms and "
                   "ions, the minimizer's random numbers (generator, restarts), MD velocities (default: 0)")
    _add_preparation(m)
    _add_outputs(m, plot=True)
    _add_md(m)
    r = commands.add_parser("relax", help="AlphaFold-style relax of predicted models",
                            description="AlphaFold's relax protocol (amber99sb, HBonds, vacuum, heavy-atom "
                            "restraints, violation checks, release and minimize again) with this minimizer.")
    _add_inputs(r)
    _add_minimizer(r, default_method="lbfgs",  # AlphaFold's own inner step: measured fastest for relax
                   seed_help="random seed: where the preparation places missing atoms and hydrogens, and the "
                   "inner minimizer's random numbers (relax runs no MD; default: 0)")
    relax = r.add_argument_group("relax protocol")
    relax.add_argument("--restraint-stiffness", dest="stiffness", type=nonnegative_float, default=DEFAULT_STIFFNESS,
                       help="heavy-atom restraints, kJ/mol/nm^2 (default: %(default)s = 10 kcal/mol/A^2)")
    relax.add_argument("--released-stiffness", type=nonnegative_float, default=DEFAULT_STIFFNESS / 10,
                       help="restraint kept on released (violating) residues, to their prepared positions, "
                       "kJ/mol/nm^2 (default: %(default)s = 1 kcal/mol/A^2; 0: AlphaFold's full release)")
    relax.add_argument("--max-outer-iterations", type=positive_int, default=MAX_OUTER_ITERATIONS,
                       help="minimize, check, release violating residues: at most this often (default %(default)s)")
    relax.add_argument("--ph", type=float, default=7.0, help="pH for the added hydrogens (default: %(default)s)")
    relax.add_argument("--model", type=positive_int, default=1, help="model of a multi-model file (default: 1)")
    _add_outputs(r, plot=False)
    from .run import HELP, add_arguments  # here: run imports patch, which imports this module
    add_arguments(commands.add_parser("run", help=HELP, description=HELP[:1].upper() + HELP[1:] + "."))
    return parser


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="+", metavar="IN",
                        help="input structures (.pdb/.ent or .cif/.mmcif, plain or .gz): files, directories or glob "
                        "patterns")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("-o", "--output", metavar="OUT",
                        help="one input: the result; format from the extension (.pdb or .cif)")
    target.add_argument("--out-dir", metavar="DIR", help="any number of inputs: DIR/NAME.pdb|.cif, DIR/NAME.json, "
                        "DIR/summary.json and DIR/summary.csv (run on Dask)")
    batch = parser.add_argument_group("batch (--out-dir)")
    batch.add_argument("--workers", type=positive_int, default=None,
                       help="size of the embedded Dask LocalCluster (default: cores / --threads)")
    batch.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="use a running Dask scheduler (e.g. tcp://host:8786) instead of a LocalCluster")
    batch.add_argument("--force", action="store_true",
                       help="redo structures whose output and report exist with the same settings")
    batch.add_argument("--format", choices=("pdb", "cif"), default=None,
                       help="output format (default: the input's)")


def _add_minimizer(parser: argparse.ArgumentParser, default_method: str, seed_help: str) -> None:
    run = parser.add_argument_group("minimization")
    run.add_argument("--method", choices=_MethodChoices(), default=default_method,
                     help="minimizer: any registered method, plug-ins included (default: %(default)s; cg is the "
                     "deprecated name of linear)")
    run.add_argument("--tolerance", type=positive_float, default=10.0,
                     help="RMS force tolerance in kJ/mol/nm (default: %(default)s)")
    run.add_argument("--max-iterations", type=nonnegative_int, default=0,
                     help="cap on iterations over all stages (0: no cap; default)")
    run.add_argument("--seed", type=int, default=0, help=seed_help)
    run.add_argument("--steps", type=nonnegative_int, default=None,
                     help="max steps of the reparametrized stage (gnn, linear)")
    run.add_argument("--fine-steps", type=nonnegative_int, default=None,
                     help="max steps of the coordinate Adam stage: gnn's and linear's fine stage (fine_steps), the "
                     "whole of adam (adam_steps)")
    run.add_argument("--time-budget", type=positive_float, default=None,
                     help="seconds for the whole minimization, the L-BFGS polish included")
    run.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="any other minimizer option, e.g. --option n_modes=10 --option never_worse=false "
                     "(repeatable; an option the method does not use is an error; see the options reference, "
                     "docs/reference/options.rst)")
    run.add_argument("--platform", default=None, help="OpenMM platform (Reference, CPU, CUDA, OpenCL; "
                     "default: the fastest available)")
    run.add_argument("--threads", type=positive_int, default=None,
                     help="OpenMM CPU and torch threads per structure (default 1: the same result every run and in "
                     "a batch; OpenMM's CPU platform sums forces in an order that varies with more threads)")


def _add_preparation(parser: argparse.ArgumentParser) -> None:
    prep = parser.add_argument_group("preparation")
    prep.add_argument("--forcefield", action="append", default=None, metavar="NAME|XML",
                      help=f"repeatable: the first names the main force field ({', '.join(FORCEFIELDS)}, or "
                      f"{', '.join(main for main, _ in FORCEFIELDS.values())}; default: amber14); each further one "
                      "is an extra XML file (a path, or a file shipped with OpenMM) with templates and parameters "
                      "for ligands and cofactors, added after it")
    prep.add_argument("--solvent", choices=SOLVENTS, default="obc2",
                      help=f"{', '.join(IMPLICIT_SOLVENTS)}: vacuum or implicit solvent; explicit: a periodic water "
                      "box (PME) of --water; tip3p: the same as --solvent explicit --water tip3p "
                      "(default: %(default)s)")
    prep.add_argument("--water", choices=tuple(WATER_MODELS), default=None,
                      help="explicit solvent's water model, the force field's own file for it (amber14/tip4pew.xml, "
                      "...; 4-site models get their virtual site); charmm36 ships tip3p, spce and tip4pew "
                      "(default: tip3p)")
    prep.add_argument("--ph", type=float, default=7.0, help="pH for the added hydrogens (default: %(default)s)")
    prep.add_argument("--model", type=positive_int, default=1, help="model of a multi-model file (default: 1)")
    prep.add_argument("--add-missing-residues", action="store_true", help="build residues missing inside chains")
    prep.add_argument("--keep-water", action="store_true", help="keep crystallographic waters")
    prep.add_argument("--keep-heterogens", action="store_true",
                      help="keep ligands and other heterogens (the force field must have templates for them: give "
                      "their XML file with a further --forcefield)")
    prep.add_argument("--padding", type=positive_float, default=1.0,
                      help="explicit solvent: water around the solute, nm (default: %(default)s)")
    prep.add_argument("--box", choices=BOX_SHAPES, default="cube",
                      help="explicit solvent: the box's shape (rhombic dodecahedron, truncated octahedron: fewer "
                      "waters for the same padding; default: %(default)s)")
    prep.add_argument("--ionic-strength", type=nonnegative_float, default=0.0, metavar="MOLAR",
                      help="explicit solvent: Na+ and Cl- for this ionic strength, besides the ions that neutralize "
                      "the box (always added; default: %(default)s)")
    prep.add_argument("--constraints", choices=("hbonds", "none"), default="hbonds",
                      help="bond constraints of the System (default: hbonds, needed for 2 fs MD)")
    prep.add_argument("--restrain", choices=RESTRAINT_CHOICES, default="none",
                      help="harmonic positional restraints on heavy atoms or C-alpha (default: none)")
    prep.add_argument("--restraint-stiffness", type=nonnegative_float, default=DEFAULT_STIFFNESS,
                      help="restraint stiffness, kJ/mol/nm^2 (default: %(default)s = 10 kcal/mol/A^2)")


def _add_outputs(parser: argparse.ArgumentParser, plot: bool) -> None:
    out = parser.add_argument_group("outputs")
    out.add_argument("--report", metavar="JSON", help="with -o: write a JSON report (a batch always writes them)")
    out.add_argument("--write-prepared", metavar="PATH",
                     help="also write the prepared structure (repaired, hydrogens and any solvent added), before "
                     f"{'minimization' if plot else 'the relax'}: with -o a file (.pdb or .cif); with --out-dir a "
                     "folder for NAME_prepared.pdb|.cif (it may be the --out-dir)")
    if plot:
        out.add_argument("--plot", metavar="PNG", help="with -o: a PNG of energy vs iteration and wall time")
        out.add_argument("--stiffness-modes", type=nonnegative_int, default=0, metavar="N",
                         help="after minimizing, the N softest stiffness modes (is it a true minimum?); 0: off")
    out.add_argument("--overwrite", action="store_true",
                     help="let an output replace an input file, or a batch write into a folder its inputs come from "
                     "(refused otherwise: a rerun would minimize its own output)")
    out.add_argument("--quiet", action="store_true", help="no progress display and no summary")
    out.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")


def _add_md(parser: argparse.ArgumentParser) -> None:
    md = parser.add_argument_group("molecular dynamics after minimization (with -o)")
    md.add_argument("--md-steps", type=nonnegative_int, default=0, help="Langevin MD steps (2 fs) after minimizing")
    md.add_argument("--temperature", type=positive_float, default=300.0, help="MD temperature, K (default 300)")
    md.add_argument("--trajectory", metavar="DCD", help="MD trajectory (default: OUT stem + _md.dcd)")
    md.add_argument("--md-interval", type=positive_int, default=500, help="steps between saved frames and log lines")
    md.add_argument("--md-log", metavar="TXT", help="StateDataReporter log (default: trajectory stem + .log)")


def _bounded(kind: type, minimum: float, strict: bool):
    """An argparse type: a number of ``kind`` that is > minimum (strict) or >= minimum."""
    def parse(text: str):
        value = _number(text, kind)
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {minimum}, got {text}")
        return value
    return parse


positive_float = _bounded(float, 0, strict=True)
nonnegative_float = _bounded(float, 0, strict=False)
positive_int = _bounded(int, 1, strict=False)
nonnegative_int = _bounded(int, 0, strict=False)


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a valid {kind.__name__}: {text!r}") from None


__all__ = ["build_parser", "PROG", "positive_float", "nonnegative_float", "positive_int", "nonnegative_int"]


def option_value(text: str) -> Any:
    """``true``/``false``/``none``, an int, a float, or the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
