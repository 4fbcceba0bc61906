#ifndef OPENMM_REPARAM_CUDA_GLUE_H_
#define OPENMM_REPARAM_CUDA_GLUE_H_

/**
 * Device-side glue between the generator's positions/gradients (torch CUDA tensors: row-major (N,3) float64)
 * and the buffers of OpenMM's CUDA platform, so a reparametrized step can stay on the GPU:
 *
 *   packPositions:  X (N,3) double  ->  posq (float4 or double4 per atom, in OpenMM's sorted atom order, charge
 *                   in .w kept) and, for mixed precision, posqCorrection (the float residual X - float(X));
 *   unpackGradient: OpenMM's fixed-point force buffer (long long, 3 blocks of paddedNumAtoms, scale 2^32)
 *                   ->  dE/dX = -F (N,3) double in the original atom order, zero rows for fixed particles.
 *
 * STATUS: compiled by nvcc when CUDA is enabled (REPARAM_BUILD_CUDA) into libOpenMMReparamCUDAGlue, but NOT
 * wired to a Context and NOT run (no GPU was available). The device stages on the CUDA platform do not need it:
 * they run on the CudaContext's own arrays (src/ReparamCUDAKernelFactory.cpp, platforms/common). It is kept for
 * the GNN on CUDA (torch CUDA tensors sharing the platform's buffers), not written yet.
 */

#include <cuda_runtime.h>

namespace ReparamPlugin {
namespace cuda {

/** OpenMM's double-precision posq element (double4; CUDA 13 renamed the 16-byte aligned type double4_16a). */
#if defined(CUDART_VERSION) && CUDART_VERSION >= 13000
typedef double4_16a Double4;
#else
typedef double4 Double4;
#endif

/** Scale of OpenMM's fixed-point force accumulation (0x100000000). */
constexpr double FORCE_FIXED_POINT_SCALE = 4294967296.0;

/** X -> posq (single/mixed: float4; with posqCorrection != nullptr, mixed precision residuals). */
cudaError_t packPositions(const double* x, const int* atomIndex, float4* posq, float4* posqCorrection, int numAtoms,
                          cudaStream_t stream);
/** X -> posq for double precision (double4). */
cudaError_t packPositions(const double* x, const int* atomIndex, Double4* posq, int numAtoms, cudaStream_t stream);
/** Fixed-point forces -> gradient -F in the original order; fixed (may be nullptr) marks particles whose rows are 0. */
cudaError_t unpackGradient(const long long* force, const int* atomIndex, const unsigned char* fixed, double* gradient,
                           int numAtoms, int paddedNumAtoms, cudaStream_t stream);

} // namespace cuda
} // namespace ReparamPlugin

#endif
