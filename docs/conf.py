"""Sphinx configuration of the openmm-reparam documentation.

Build from the repository root:
    sphinx-build -W -b html docs build/docs-html          # the site
    sphinx-build -W -b doctest docs build/docs-doctest    # run the guide's examples
"""
import os
import re
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
sys.path[:0] = [ROOT, os.path.join(DOCS, "_ext")]

project = "openmm-reparam"
author = "openmm-reparam contributors"
copyright = "openmm-reparam contributors"
with open(os.path.join(ROOT, "openmm_reparam", "__init__.py"), encoding="utf-8") as init:
    release = version = re.search(r'^__version__ = "([^"]+)"', init.read(), re.M).group(1)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "options_reference",
    "cli_reference",
    "repo_links",
]
exclude_patterns = ["_build"]
smartquotes = False
html_theme = "alabaster"
html_theme_options = {"description": "Energy minimization for OpenMM by neural-network reparametrization",
                      "fixed_sidebar": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# The guide's examples run on chignolin (examples/data/5AWL.pdb, 166 atoms with hydrogens) in implicit solvent,
# so that all of them take about a minute; each checks what it shows (energies down, converged, files written).
doctest_global_setup = f"""
import os
EXAMPLES = {os.path.join(ROOT, "examples")!r}
CHIGNOLIN = os.path.join(EXAMPLES, "data", "5AWL.pdb")
"""
# Exception messages are checked too (Sphinx's default ignores them).
import doctest  # noqa: E402

doctest_default_flags = doctest.ELLIPSIS | doctest.DONT_ACCEPT_TRUE_FOR_1
