"""Does a change keep the code path? The same minimizations, printed exactly, to compare two checkouts.

Every method that existed before methods became plug-ins (auto, gnn, linear, adam, lbfgs, precon), on both
engines, on met-enkephalin in OBC2 with and without HBonds, 0.02 nm noise (seed 5), Reference platform (deterministic),
``never_worse=True``: one JSON line per run with the final energy (every digit), the stages with their
iteration counts, the selected result and the history length. It uses only the checkout's
``tests/conftest.py`` (loaded from its path) and the public ``openmm_reparam.minimize``, so it runs on older
checkouts too::

    (cd OLD && python -c "import runpy; runpy.run_path('NEW/benchmarks/same_path.py')['main']([])") > old.jsonl
    python -m benchmarks same-path > new.jsonl
    diff old.jsonl new.jsonl && echo identical

Before methods became plug-ins, method ``adam`` ran ``fine_steps + steps`` steps, so an older checkout gets
``steps=0`` with it.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import List, Optional

CASES = (("adam", dict(fine_steps=300)), ("precon", {}),
         ("gnn", dict(steps=80, fine_steps=80, n_modes=8, hidden=8, fit_steps=200)),
         ("linear", dict(steps=80, fine_steps=80, n_modes=8)), ("lbfgs", {}), ("auto", {}))


def runs():
    """One dict per run, in a fixed order."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("checkout_conftest", os.path.join(os.getcwd(), "tests", "conftest.py"))
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    load_peptide, make_context, perturbed = conftest.load_peptide, conftest.make_context, conftest.perturbed
    from openmm import app
    import openmm_reparam
    old_adam = not hasattr(openmm_reparam, "register_method")
    for constraints in (None, app.HBonds):
        _, system, positions = load_peptide("1plw", constraints=constraints)
        start = perturbed(positions, 0.02, seed=5)
        for method, options in CASES:
            options = dict(options, steps=0) if method == "adam" and old_adam else dict(options)
            if method != "lbfgs":
                options["never_worse"] = True
            for engine in ("python", "cpp"):
                result = openmm_reparam.minimize(make_context(system, start, "Reference"), method=method,
                                                 engine=engine, **options)
                yield {"key": f"{method}/{engine}/{'hbonds' if constraints else 'none'}", "E": result.final_energy,
                       "stages": [(s.name, s.iterations) for s in result.stages], "selected": result.selected,
                       "n_hist": len(result.history)}


def main(argv: Optional[List[str]] = None) -> int:
    argparse.ArgumentParser(prog="python -m benchmarks same-path", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    for row in runs():
        print(json.dumps(row), flush=True)
    return 0
