"""``python -m openmm_reparam run SCRIPT.py [ARGS...]`` (an unmodified OpenMM script, minimized by us), or any
``openmm-reparam`` command (``python -m openmm_reparam minimize IN.pdb -o OUT.pdb``, ``relax ...``)."""
import sys


def main() -> int:
    """Dispatch ``run`` to :mod:`openmm_reparam.app.run`, everything else to the ``openmm-reparam`` CLI."""
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from .app.run import main as run_main
        return run_main(sys.argv[2:])
    from .app.cli import main as cli_main
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
