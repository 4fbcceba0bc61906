"""Where the benchmarks read the deposited PDB entries: the directory named by ``OPENMM_REPARAM_PDB_DIR``, else
``../shared/data/pdb`` next to the repository. The default lives here only; every benchmark reads it from here."""
from __future__ import annotations

import os

#: The environment variable that names the directory of deposited entries (``<ID>.pdb``).
ENV_VARIABLE = "OPENMM_REPARAM_PDB_DIR"
#: Its default: ``shared/data/pdb`` beside the repository's directory.
DEFAULT_PDB_SOURCE_DIR = os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "pdb"))
#: The directory in use (read once, when the benchmarks are imported).
PDB_SOURCE_DIR = os.environ.get(ENV_VARIABLE, DEFAULT_PDB_SOURCE_DIR)
