/*
 * Round trip of the CUDA glue on a GPU: pack positions into a posq buffer with a permuted atom order and unpack a
 * fixed-point force buffer. Returns 77 (ctest SKIP) when no CUDA device is present.
 */
#include "ReparamCudaGlue.h"
#include <cmath>
#include <cstdio>
#include <vector>

using namespace ReparamPlugin::cuda;

int main() {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("no CUDA device: skipped\n");
        return 77;
    }
    const int n = 5, padded = 32;
    std::vector<double> x(3 * n);
    for (int i = 0; i < 3 * n; i++)
        x[i] = 0.1 * i + 1e-9;
    std::vector<int> order = {3, 0, 4, 1, 2};
    std::vector<float4> posq(n, make_float4(0, 0, 0, 0.5f));
    std::vector<long long> force(3 * padded, 0);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 3; j++)
            force[i + j * padded] = (long long) ((i + 1.0) * (j + 2.0) * FORCE_FIXED_POINT_SCALE);
    double *dx, *dgrad;
    int* dorder;
    float4 *dposq, *dcorr;
    long long* dforce;
    cudaMalloc(&dx, sizeof(double) * 3 * n);
    cudaMalloc(&dgrad, sizeof(double) * 3 * n);
    cudaMalloc(&dorder, sizeof(int) * n);
    cudaMalloc(&dposq, sizeof(float4) * n);
    cudaMalloc(&dcorr, sizeof(float4) * n);
    cudaMalloc(&dforce, sizeof(long long) * 3 * padded);
    cudaMemcpy(dx, x.data(), sizeof(double) * 3 * n, cudaMemcpyHostToDevice);
    cudaMemcpy(dorder, order.data(), sizeof(int) * n, cudaMemcpyHostToDevice);
    cudaMemcpy(dposq, posq.data(), sizeof(float4) * n, cudaMemcpyHostToDevice);
    cudaMemcpy(dforce, force.data(), sizeof(long long) * 3 * padded, cudaMemcpyHostToDevice);
    if (packPositions(dx, dorder, dposq, dcorr, n, 0) != cudaSuccess ||
        unpackGradient(dforce, dorder, nullptr, dgrad, n, padded, 0) != cudaSuccess) {
        std::printf("FAIL: kernel launch\n");
        return 1;
    }
    std::vector<float4> corr(n);
    std::vector<double> grad(3 * n);
    cudaMemcpy(posq.data(), dposq, sizeof(float4) * n, cudaMemcpyDeviceToHost);
    cudaMemcpy(corr.data(), dcorr, sizeof(float4) * n, cudaMemcpyDeviceToHost);
    cudaMemcpy(grad.data(), dgrad, sizeof(double) * 3 * n, cudaMemcpyDeviceToHost);
    for (int i = 0; i < n; i++) {
        int atom = order[i];
        double reconstructed = (double) posq[i].x + (double) corr[i].x;
        if (std::fabs(reconstructed - x[3 * atom]) > 1e-12 || posq[i].w != 0.5f) {
            std::printf("FAIL: positions of slot %d\n", i);
            return 1;
        }
        for (int j = 0; j < 3; j++)
            if (std::fabs(grad[3 * atom + j] + (i + 1.0) * (j + 2.0)) > 1e-9) {
                std::printf("FAIL: gradient of atom %d\n", atom);
                return 1;
            }
    }
    std::printf("Done\n");
    return 0;
}
