#!/usr/bin/env bash
# Compiles the device stages' kernel sources (platforms/common) with nvcc in double, mixed and single precision,
# behind a prelude written after OpenMM's CUDA definitions of the common kernel language (KERNEL, GLOBAL,
# GLOBAL_ID, NUM_GROUPS = gridDim.x, ...; platforms/cuda/src/kernels/common.cu and CudaContext's type defines).
# OpenMM compiles them at run time with its own prelude, so this only catches what CUDA C++ rejects (syntax,
# overloads, a clash with one of those macros) where no GPU is there to run them. Usage: compile_kernel_sources.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The sources as the build carries them: encoded by the build's own script (cmake in script mode).
cmake -DKERNEL_DIR="$here/../../common/src/kernels" -DOUTPUT="$work/ReparamKernelSources.cpp" \
      -P "$here/../../../cmake/EncodeKernelSources.cmake"
g++ -std=c++17 -I"$here/../../common/src" "$here/PrintKernelSources.cpp" "$work/ReparamKernelSources.cpp" \
    -o "$work/print"
for precision in double mixed single; do
  case $precision in
    double) real=double; mixed=double; flag="";;
    mixed) real=float; mixed=double; flag="#define USE_MIXED_PRECISION 1";;
    single) real=float; mixed=float; flag="";;
  esac
  for stage in adam generator fire precon; do
    source="$work/${stage}_${precision}.cu"
    modes=""
    [ "$stage" = generator ] && modes="#define HAS_GENERATOR 1
#define NUM_PARAMS 3000
#define ROWS 80
#define HIDDEN 32
#define REDUCE_BLOCK_SIZE 64"
    cat > "$source" <<PRELUDE
#define KERNEL extern "C" __global__
#define DEVICE __device__
#define LOCAL __shared__
#define LOCAL_ARG
#define GLOBAL
#define RESTRICT __restrict__
#define LOCAL_ID threadIdx.x
#define LOCAL_SIZE blockDim.x
#define GLOBAL_ID (blockIdx.x*blockDim.x+threadIdx.x)
#define GLOBAL_SIZE (blockDim.x*gridDim.x)
#define GROUP_ID blockIdx.x
#define NUM_GROUPS gridDim.x
#define SYNC_THREADS __syncthreads();
typedef long long mm_long;
typedef $real real; typedef ${real}4 real4; typedef $mixed mixed; typedef ${mixed}3 mixed3; typedef ${mixed}4 mixed4;
__device__ inline mixed3 make_mixed3(mixed a, mixed b, mixed c) { mixed3 r; r.x = a; r.y = b; r.z = c; return r; }
$flag
#define NUM_ATOMS 100
#define PADDED_NUM_ATOMS 128
#define NUM_CONSTRAINT_GROUPS 10
#define NUM_LARGE_GROUPS 1
#define CG_TARGET 1e-28
#define MAX_GROUP 12
#define THREAD_BLOCK_SIZE 256
#define NUM_BLOCKS 4
#define NUM_MOVABLE 90
#define NUM_COORDS 270
#define TINY 1e-30
$modes
PRELUDE
    "$work/print" "$stage" >> "$source"
    nvcc -arch=sm_80 -Wno-deprecated-declarations -c "$source" -o "$work/out.o"
  done
done
echo "device kernel sources compiled with nvcc (double, mixed, single; adam, generator, fire, precon)"
