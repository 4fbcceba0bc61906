"""How the package starts: ``import openmm_reparam`` and ``openmm-reparam --help`` leave torch unimported (it is
imported where a method runs), every public name still resolves, ``openmm-reparam run`` runs a real OpenMM
script on both entry points, a missing optional dependency is one line naming its extra, and openmmtorch's
TorchForce works whatever order openmm and openmmtorch are imported in. Each check runs in a fresh process."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREPARED = os.path.join(ROOT, "openmm_reparam", "data", "1plw_prepared.pdb")
CONSOLE_SCRIPT = os.path.join(os.path.dirname(sys.executable), "openmm-reparam")

# a finder that makes the named modules look uninstalled, for the optional-dependency checks
BLOCK = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Block())
"""


def python(*args: str, cwd: str = ROOT, env: dict = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ, PYTHONPATH=ROOT, **(env or {}))
    environment.pop("OPENMM_REPARAM_OPTIONS", None)
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=environment)


def entry_points() -> list:
    """The two ways to start the command: the console script (where this environment has it) and ``-m``."""
    points = [["-m", "openmm_reparam"]]
    if os.access(CONSOLE_SCRIPT, os.X_OK):
        points.append([CONSOLE_SCRIPT])  # run by this Python: its package is the checkout (PYTHONPATH)
    return points


def test_import_leaves_torch_out_and_every_public_name_resolves():
    code = ("import sys, openmm_reparam\n"
            "print('torch' in sys.modules, 'openmm_reparam.api' in sys.modules)\n"
            "missing = [n for n in openmm_reparam.__all__ if not hasattr(openmm_reparam, n)]\n"
            "print(missing, sorted(openmm_reparam.METHODS)[:3], 'minimize' in dir(openmm_reparam))\n")
    done = python("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["False False", "[] ['adam', 'auto', 'fire'] True"]


def test_an_unknown_attribute_is_an_attribute_error():
    done = python("-c", "import openmm_reparam\nopenmm_reparam.no_such_name\n")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == ("AttributeError: module 'openmm_reparam' has no attribute "
                                                    "'no_such_name'")


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_leave_torch_out(flag):
    code = ("import sys\nfrom openmm_reparam.app.cli import main\n"
            f"try:\n    main([{flag!r}])\nexcept SystemExit as exit_:\n    print('exit', exit_.code)\n"
            "print('torch' in sys.modules)\n")
    done = python("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-2:] == ["exit 0", "False"]


@pytest.mark.parametrize("start", entry_points(), ids=lambda start: os.path.basename(start[-1]))
def test_both_entry_points_list_run_and_print_the_version(start):
    done = python(*start, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    commands = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ")]
    assert commands[:3] == ["minimize", "relax", "run"]
    done = python(*start, "--version")
    assert (done.returncode, done.stdout.strip()) == (0, "openmm-reparam 0.1.0")
    done = python(*start, "run", "--help")
    assert done.returncode == 0 and done.stdout.startswith("usage: openmm-reparam run ")


SCRIPT = """\
import sys
from openmm import LangevinMiddleIntegrator, Platform
from openmm.app import ForceField, NoCutoff, PDBFile, Simulation
from openmm.unit import kelvin, kilojoule_per_mole, picosecond, picoseconds

pdb = PDBFile(sys.argv[1])
forcefield = ForceField("amber14-all.xml", "implicit/obc2.xml")
system = forcefield.createSystem(pdb.topology, nonbondedMethod=NoCutoff)
integrator = LangevinMiddleIntegrator(300 * kelvin, 1 / picosecond, 0.002 * picoseconds)
simulation = Simulation(pdb.topology, system, integrator, Platform.getPlatformByName("CPU"), {"Threads": "1"})
simulation.context.setPositions(pdb.positions)
start = simulation.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(kilojoule_per_mole)
simulation.minimizeEnergy(tolerance=10)
energy = simulation.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(kilojoule_per_mole)
print(f"start {start:.4f} minimized {energy:.4f} kJ/mol", sys.argv[2:])
"""


@pytest.mark.parametrize("start", entry_points(), ids=lambda start: os.path.basename(start[-1]))
def test_run_minimizes_a_real_openmm_script(start, tmp_path):
    script = tmp_path / "simulate.py"
    script.write_text(SCRIPT)
    done = python(*start, "run", "--method", "precon", str(script), PREPARED, "--its-own", "arg", cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    [summary] = [line for line in done.stderr.splitlines() if line.startswith("openmm_reparam:")]
    assert summary.startswith("openmm_reparam: Simulation.minimizeEnergy -> precon: ")
    patched_final = float(re.search(r"-> (-?[\d.]+) kJ/mol", summary).group(1))
    printed = re.fullmatch(r"start (-?[\d.]+) minimized (-?[\d.]+) kJ/mol \['--its-own', 'arg'\]",
                           done.stdout.strip())
    assert printed, done.stdout
    start_energy, minimized = float(printed.group(1)), float(printed.group(2))
    assert minimized == pytest.approx(patched_final, abs=0.05)  # the script sees the minimum we report
    assert minimized < start_energy - 1.0


def test_run_refuses_a_missing_script_in_one_line(tmp_path):
    done = python("-m", "openmm_reparam", "run", str(tmp_path / "missing.py"), cwd=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == f"openmm-reparam run: error: no such script: {tmp_path / 'missing.py'}"


def test_a_missing_batch_dependency_is_one_line_naming_the_extra(tmp_path):
    code = BLOCK.format(names={"distributed"}) + (
        "import openmm_reparam\n"
        "try:\n"
        f"    openmm_reparam.minimize_many([{PREPARED!r}], {str(tmp_path / 'out')!r})\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error)\n")
    done = python("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("MissingDependencyError a batch run (minimize_many, --out-dir) needs the "
                                          "optional package 'distributed'")
    assert done.stdout.strip().endswith("pip install 'openmm-reparam[batch]'")
    assert not (tmp_path / "out").exists()


def test_a_missing_plot_dependency_fails_the_command_before_the_run(tmp_path):
    code = BLOCK.format(names={"matplotlib"}) + (
        "from openmm_reparam.app.cli import main\n"
        f"raise SystemExit(main([{PREPARED!r}, '-o', 'out.pdb', '--plot', 'e.png']))\n")
    done = python("-c", code.replace("main([", "main(['minimize', "), cwd=str(tmp_path))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("openmm-reparam: error: --plot needs the optional package 'matplotlib'")
    assert line.endswith("pip install 'openmm-reparam[plot]'")
    assert not (tmp_path / "out.pdb").exists()


@pytest.mark.skipif(importlib.util.find_spec("openmmtorch") is None, reason="openmmtorch is not installed")
@pytest.mark.parametrize("order", ["openmm_reparam, openmm", "openmm, openmm_reparam"])
def test_torchforce_works_when_openmm_is_imported_before_torch(order, tmp_path):
    """OpenMM loads openmmtorch's kernels when openmm is first imported, which needs libtorch loaded; importing
    openmm_reparam (which no longer imports torch) must still leave TorchForce usable."""
    code = (f"import {order}\nimport sys\nprint('torch' in sys.modules)\nimport openmmtorch, torch\n"
            "class Square(torch.nn.Module):\n    def forward(self, x):\n        return (x ** 2).sum()\n"
            f"torch.jit.script(Square()).save({str(tmp_path / 'square.pt')!r})\n"
            "system = openmm.System()\nsystem.addParticle(1.0)\n"
            f"system.addForce(openmmtorch.TorchForce({str(tmp_path / 'square.pt')!r}))\n"
            "context = openmm.Context(system, openmm.VerletIntegrator(0.001), "
            "openmm.Platform.getPlatformByName('Reference'))\n"
            "context.setPositions([openmm.Vec3(0.1, 0.2, 0.3)])\n"
            "print(context.getState(getEnergy=True).getPotentialEnergy()._value)\n")
    script = tmp_path / "torchforce.py"
    script.write_text(code)  # a file: TorchScript reads the module's source
    done = python(str(script))
    assert done.returncode == 0, done.stderr[-2000:]
    torch_before, energy = done.stdout.split()[-2:]
    assert torch_before == "False"
    assert float(energy) == pytest.approx(0.14)
