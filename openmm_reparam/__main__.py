"""``python -m openmm_reparam ...``: the ``openmm-reparam`` command (``minimize``, ``relax``, ``run SCRIPT.py
[ARGS...]``: an unmodified OpenMM script, minimized by us)."""
import sys


def main() -> int:
    """The ``openmm-reparam`` command line (:func:`openmm_reparam.app.cli.main`)."""
    from .app.cli import main as cli_main
    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
