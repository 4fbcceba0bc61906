#!/usr/bin/env bash
# The device check, one command on a GPU machine, at most 5 minutes (each step has its own timeout):
#   1. builds the plugin with CUDA (REPARAM_BUILD_CUDA=ON; the CUDA device stages need OpenMM's CUDA platform,
#      `pip install openmm-cuda-12` or -13, found in the openmm wheel's lib/plugins) into build/device-check and
#      puts the libraries into openmm_reparam/_cpp;
#   2. runs the device tests on CUDA (OPENMM_REPARAM_TEST_PLATFORM=CUDA: tests/test_device_stages.py,
#      tests/test_device_fire.py, tests/test_device_precon.py and tests/test_device_generators.py; they must run, not skip);
#   3. times the default (minimize(context), no options) against OpenMM's LocalEnergyMinimizer on CUDA on the
#      solvated chignolin and on the 85k-atom Max-DNA complex (../shared/data/pdb/1HLO), side by side with the
#      ratios and the cost of a device Adam step against a bare force evaluation (benchmarks/device_timing.py),
#      added to benchmarks/RESULTS.md#device case by case.
# Exit status: 0 all passed; 2 no GPU; 4 no CUDA platform in OpenMM; 5 the build failed; 6 the tests failed or
# skipped (the timing still runs); 124 a step ran out of time.
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
command -v nvidia-smi >/dev/null 2>&1 || { echo "device_check: no GPU (nvidia-smi not found)" >&2; exit 2; }
python -c "import openmm; openmm.Platform.getPlatformByName('CUDA')" 2>/dev/null || {
  echo "device_check: OpenMM has no CUDA platform here (pip install openmm-cuda-12)" >&2; exit 4; }
echo "device_check: building with CUDA ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
mkdir -p build
if ! timeout 150 bash -c 'cmake -S . -B build/device-check -DPython3_EXECUTABLE="$(command -v python)" \
        -DREPARAM_BUILD_CUDA=ON > build/device-check.log 2>&1 &&
      cmake --build build/device-check -j"$(nproc)" >> build/device-check.log 2>&1'; then
  tail -20 build/device-check.log >&2; echo "device_check: the build failed (build/device-check.log)" >&2; exit 5
fi
test -f build/device-check/package/libOpenMMReparamCUDA.so || {
  echo "device_check: libOpenMMReparamCUDA.so was not built (no libOpenMMCUDA.so found)" >&2; exit 5; }
mkdir -p openmm_reparam/_cpp
cp build/device-check/package/*.so build/device-check/package/reparamplugin.py openmm_reparam/_cpp/
[ -f openmm_reparam/_cpp/__init__.py ] || echo '"""Compiled openmm-reparam plugin."""' > openmm_reparam/_cpp/__init__.py
echo "device_check: built in ${SECONDS} s; device tests on CUDA"
status=0
OPENMM_REPARAM_TEST_PLATFORM=CUDA timeout 150 python -m pytest -q -rs tests/test_device_stages.py \
    tests/test_device_fire.py tests/test_device_precon.py tests/test_device_generators.py 2>&1 | tee build/device-check/tests.log
test_status=${PIPESTATUS[0]}
if [ "$test_status" -ne 0 ] || grep -q "SKIPPED" build/device-check/tests.log; then
  echo "device_check: device tests failed or skipped on CUDA (status $test_status)" >&2; status=6
fi
left=$((295 - SECONDS))
echo "device_check: timing on CUDA (${left} s left)"
timeout "$left" python -m benchmarks device-timing --platform CUDA --cases chignolin,max_dna \
    --results benchmarks/RESULTS.md --json build/device-check/timing.json || status=$?
echo "device_check: done in ${SECONDS} s (status $status)"
exit "$status"
