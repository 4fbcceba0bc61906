/* Device-side glue between generator tensors and OpenMM CUDA buffers (see ReparamCudaGlue.h; untested on a GPU). */
#include "ReparamCudaGlue.h"

namespace ReparamPlugin {
namespace cuda {

namespace {

constexpr int THREADS = 128;

int blocksFor(int n) {
    return (n + THREADS - 1) / THREADS;
}

/* Sorted slot i holds original atom atomIndex[i]; keep the charge in .w. */
__global__ void packPositionsMixed(const double* __restrict__ x, const int* __restrict__ atomIndex,
                                   float4* __restrict__ posq, float4* __restrict__ posqCorrection, int numAtoms) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < numAtoms; i += blockDim.x * gridDim.x) {
        int atom = atomIndex[i];
        double px = x[3 * atom], py = x[3 * atom + 1], pz = x[3 * atom + 2];
        float4 p = posq[i];
        p.x = (float) px;
        p.y = (float) py;
        p.z = (float) pz;
        posq[i] = p;
        if (posqCorrection != nullptr)
            posqCorrection[i] = make_float4((float) (px - (double) p.x), (float) (py - (double) p.y),
                                            (float) (pz - (double) p.z), 0.0f);
    }
}

__global__ void packPositionsDouble(const double* __restrict__ x, const int* __restrict__ atomIndex,
                                    Double4* __restrict__ posq, int numAtoms) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < numAtoms; i += blockDim.x * gridDim.x) {
        int atom = atomIndex[i];
        Double4 p = posq[i];
        p.x = x[3 * atom];
        p.y = x[3 * atom + 1];
        p.z = x[3 * atom + 2];
        posq[i] = p;
    }
}

__global__ void unpackGradientKernel(const long long* __restrict__ force, const int* __restrict__ atomIndex,
                                     const unsigned char* __restrict__ fixed, double* __restrict__ gradient,
                                     int numAtoms, int paddedNumAtoms) {
    const double scale = -1.0 / FORCE_FIXED_POINT_SCALE;  // gradient = -F
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < numAtoms; i += blockDim.x * gridDim.x) {
        int atom = atomIndex[i];
        bool zero = fixed != nullptr && fixed[atom];
        gradient[3 * atom] = zero ? 0.0 : scale * (double) force[i];
        gradient[3 * atom + 1] = zero ? 0.0 : scale * (double) force[i + paddedNumAtoms];
        gradient[3 * atom + 2] = zero ? 0.0 : scale * (double) force[i + 2 * paddedNumAtoms];
    }
}

} // namespace

cudaError_t packPositions(const double* x, const int* atomIndex, float4* posq, float4* posqCorrection, int numAtoms,
                          cudaStream_t stream) {
    if (numAtoms <= 0)
        return cudaSuccess;
    packPositionsMixed<<<blocksFor(numAtoms), THREADS, 0, stream>>>(x, atomIndex, posq, posqCorrection, numAtoms);
    return cudaGetLastError();
}

cudaError_t packPositions(const double* x, const int* atomIndex, Double4* posq, int numAtoms, cudaStream_t stream) {
    if (numAtoms <= 0)
        return cudaSuccess;
    packPositionsDouble<<<blocksFor(numAtoms), THREADS, 0, stream>>>(x, atomIndex, posq, numAtoms);
    return cudaGetLastError();
}

cudaError_t unpackGradient(const long long* force, const int* atomIndex, const unsigned char* fixed, double* gradient,
                           int numAtoms, int paddedNumAtoms, cudaStream_t stream) {
    if (numAtoms <= 0)
        return cudaSuccess;
    unpackGradientKernel<<<blocksFor(numAtoms), THREADS, 0, stream>>>(force, atomIndex, fixed, gradient, numAtoms,
                                                                      paddedNumAtoms);
    return cudaGetLastError();
}

} // namespace cuda
} // namespace ReparamPlugin
