"""A short run of the compiled plugin under AddressSanitizer and UndefinedBehaviorSanitizer (CI, `.ci/sanitizers`).

    python .ci/sanitizer_smoke.py build/sanitize/package

Run by `.ci/sanitizers` with the sanitizer runtime preloaded into this (uninstrumented) Python. The package is
imported from a tree of links to openmm_reparam/ whose ``_cpp`` holds the sanitized libraries of the given
folder (the normal build in openmm_reparam/_cpp is never loaded: checked below). In one process, on real
Systems (chignolin, 166 atoms, amber14 + OBC2, without and with HBonds constraints):

* the order a general-protection fault was once seen in: OpenMM's LocalEnergyMinimizer, then the default
  method, then gnn, on one Context, without and with a reporter (called from the C++ stages);
* every method on both engines (``engine="python"`` and ``"cpp"``), a few iterations each;
* the ReparamIntegrator (the C++ reparametrized step) and its serialization;
* the device stages on OpenCL (pocl), where there is an OpenCL platform: methods adam, fire, precon and gnn,
  and a start with two atoms 0.01 nm apart (the forces beyond the device's fixed-point range, recomputed on
  the CPU platform).

A sanitizer report aborts the process (exit code != 0), which fails CI.
"""
from __future__ import annotations

import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def linked_package(plugin_dir: str, into: str) -> str:
    """A package tree at ``into``/openmm_reparam whose entries link to the checkout's openmm_reparam/, except
    ``_cpp``: a folder of links to the sanitized plugin's files in ``plugin_dir``. Returns the folder to put on
    sys.path. Module paths stay under ``into`` (links are not resolved), so openmm_reparam.engines.device finds
    the sanitized platform libraries beside the sanitized SWIG module."""
    source = os.path.join(ROOT, "openmm_reparam")
    package = os.path.join(into, "openmm_reparam")
    cpp = os.path.join(package, "_cpp")
    os.makedirs(cpp, exist_ok=True)
    for name in os.listdir(source):
        link = os.path.join(package, name)
        if name in ("_cpp", "__pycache__") or os.path.lexists(link):
            continue
        os.symlink(os.path.join(source, name), link)
    for name in os.listdir(cpp):
        os.remove(os.path.join(cpp, name))
    for name in os.listdir(plugin_dir):
        if name.endswith(".so") or name == "reparamplugin.py":
            os.symlink(os.path.join(plugin_dir, name), os.path.join(cpp, name))
    with open(os.path.join(cpp, "__init__.py"), "w") as init:
        init.write('"""The plugin built with the sanitizers (links into its build folder)."""\n')
    return into


def check_sanitized_plugin(plugin_dir: str) -> None:
    """Fail unless the plugin libraries mapped into this process are the sanitized ones."""
    wanted = os.path.realpath(plugin_dir)
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if line.split()[-1].startswith("/")}
    mapped = {path for path in paths if "reparam" in os.path.basename(path).lower()}
    foreign = [path for path in mapped if os.path.dirname(os.path.realpath(path)) != wanted]
    if not mapped or foreign:
        raise SystemExit(f"sanitizer smoke: expected the plugin from {wanted}, mapped: {sorted(mapped)}")
    print(f"sanitized plugin loaded: {', '.join(sorted(os.path.basename(p) for p in mapped))}", flush=True)


def log(what: str, started: float) -> None:
    print(f"  {what} ({time.perf_counter() - started:.1f} s)", flush=True)


def counting_reporter(openmm):
    """A MinimizationReporter that counts its calls (the compiled stages call it from C++ every step)."""
    class Count(openmm.MinimizationReporter):
        calls = 0

        def report(self, iteration, x, grad, args):
            Count.calls += 1
            return False
    return Count()


def run_methods(openmm, openmm_reparam, testing, constraints, name: str) -> None:
    """The faulting order on one Context (without and with a reporter), then every method on both engines from
    the same start."""
    _, system, positions = testing.load_peptide("5awl", constraints=constraints)
    start = testing.perturbed(positions, 0.02, seed=1)
    for reporter in (None, counting_reporter(openmm)):
        t = time.perf_counter()
        context = testing.make_context(system, start)
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 50)
        openmm_reparam.minimize(context, maxIterations=60, reporter=reporter)
        openmm_reparam.minimize(context, method="gnn", maxIterations=60, reporter=reporter)
        assert reporter is None or type(reporter).calls > 0
        log(f"{name}: LocalEnergyMinimizer, then the default method, then gnn on one Context"
            f"{', with a reporter' if reporter else ''}", t)
    for method in openmm_reparam.method_names():
        for engine in ("python", "cpp"):
            t = time.perf_counter()
            result = openmm_reparam.minimize(testing.make_context(system, start), method=method, engine=engine,
                                             maxIterations=40)
            assert result.final_energy == result.final_energy, (method, engine)  # not NaN
            log(f"{name}: {method} on engine {engine} -> {result.engine}", t)


def run_integrator(openmm, openmm_reparam, testing) -> None:
    t = time.perf_counter()
    _, system, positions = testing.load_peptide("5awl")
    cpu = openmm.Platform.getPlatformByName("CPU")
    integrator = openmm_reparam.ReparamIntegrator(system, positions, method="gnn", platform=cpu)
    context = openmm.Context(system, integrator, cpu)
    context.setPositions(positions * openmm.unit.nanometer)
    integrator.step(5)
    openmm.XmlSerializer.serialize(integrator)
    log("ReparamIntegrator: 5 steps and its serialization", t)


def run_device(openmm, openmm_reparam, testing) -> None:
    """The device stages on OpenCL (pocl in CI): methods adam, fire, precon and gnn, and a severe clash."""
    from openmm_reparam.engines.device import register_platform
    names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
    if "OpenCL" not in names:  # .ci/run notes a machine without an OpenCL runtime; so does this
        print("NOTE: no OpenCL platform here: the device stages were not run under the sanitizers", flush=True)
        return
    if not register_platform("OpenCL"):
        raise SystemExit("sanitizer smoke: the sanitized OpenCL library is missing or does not load")
    platform = openmm.Platform.getPlatformByName("OpenCL")
    for constraints, name in ((None, "free"), (openmm.app.HBonds, "HBonds")):
        _, system, positions = testing.load_peptide("5awl", constraints=constraints)
        start = testing.perturbed(positions, 0.02, seed=1)
        for method in ("adam", "fire", "precon", "gnn"):
            t = time.perf_counter()
            context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, {"Precision": "single"})
            context.setPositions(start * openmm.unit.nanometer)
            result = openmm_reparam.minimize(context, method=method, engine="device", maxIterations=60)
            assert result.engine == "opencl", result.engine
            log(f"OpenCL {name}: {method} on the device", t)
    _, system, positions = testing.load_peptide("5awl")
    clash = positions.copy()
    clash[20] = clash[100] + [0.01, 0.0, 0.0]
    for method in ("adam", "fire"):
        t = time.perf_counter()
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, {"Precision": "single"})
        context.setPositions(clash * openmm.unit.nanometer)
        result = openmm_reparam.minimize(context, method=method, engine="device", maxIterations=60)
        assert result.stages[0].cpu_force_evaluations > 0, result.stages[0]
        log(f"OpenCL clash: {method}, {result.stages[0].cpu_force_evaluations} evaluations on the CPU platform", t)


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    plugin_dir = os.path.abspath(sys.argv[1])
    sys.path.insert(0, linked_package(plugin_dir, os.path.join(os.path.dirname(plugin_dir), "python")))
    import warnings

    import openmm
    import openmm.app  # noqa: F401
    import openmm.unit  # noqa: F401

    import openmm_reparam
    from openmm_reparam import testing
    from openmm_reparam.engines import compiled

    if not compiled.cpp_available():
        raise SystemExit(f"sanitizer smoke: the sanitized plugin does not load: {compiled.unavailable_reason()}")
    warnings.simplefilter("ignore")  # the clash runs warn about the CPU fallback on purpose
    started = time.perf_counter()
    check_sanitized_plugin(plugin_dir)
    run_methods(openmm, openmm_reparam, testing, None, "free")
    run_methods(openmm, openmm_reparam, testing, openmm.app.HBonds, "HBonds")
    run_integrator(openmm, openmm_reparam, testing)
    run_device(openmm, openmm_reparam, testing)
    check_sanitized_plugin(plugin_dir)
    print(f"sanitizer smoke: no report in {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
