/* Generators over TestChain.h's chain for the C++ tests: a linear slow-mode generator. */
#ifndef REPARAM_TEST_GENERATORS_H_
#define REPARAM_TEST_GENERATORS_H_

#include "ReparamGenerator.h"
#include "TestChain.h"
#include <cmath>
#include <vector>

/** Linear generator X = x0 + V z with V the k lowest cosine modes of the chain (orthonormal). */
inline ReparamPlugin::ReparamGenerator linearGenerator(const std::vector<OpenMM::Vec3>& x0, int k) {
    const int n = ChainLength;
    std::vector<double> modes(n * k), flat;
    for (int m = 0; m < k; m++) {
        double norm = 0.0;
        for (int i = 0; i < n; i++) {
            modes[i * k + m] = std::cos(M_PI * m * (i + 0.5) / n);
            norm += modes[i * k + m] * modes[i * k + m];
        }
        for (int i = 0; i < n; i++)
            modes[i * k + m] /= std::sqrt(norm);
    }
    for (const OpenMM::Vec3& p : x0)
        for (int j = 0; j < 3; j++)
            flat.push_back(p[j]);
    ReparamPlugin::ReparamGenerator gen("linear");
    gen.setBuffer("modes", modes, n, k);
    gen.setBuffer("x0", flat, n, 3);
    gen.addParameter("z", std::vector<double>(k * 3, 0.0), k, 3);
    return gen;
}

#endif
