/* Unit tests of the libtorch generators and the Adam/clipping arithmetic (no Context needed). */
#include "AdamOptimizer.h"
#include "ReparamGenerator.h"
#include "openmm/OpenMMException.h"
#include "TestUtilities.h"
#include <cmath>
#include <iostream>
#include <stdexcept>
#include <vector>

using namespace ReparamPlugin;

static std::vector<double> sequence(int n, double a, double b) {
    std::vector<double> v(n);
    for (int i = 0; i < n; i++)
        v[i] = std::sin(a * i + b);
    return v;
}

/** X = x0 + V z, checked element by element. */
static void testLinear() {
    int n = 5, k = 2;
    std::vector<double> modes = sequence(n * k, 0.7, 0.1), x0 = sequence(n * 3, 0.3, 0.2), z = sequence(k * 3, 1.1, 0.5);
    ReparamGenerator gen("cg");
    REPARAM_ASSERT(gen.getKind() == "linear");
    gen.setBuffer("modes", modes, n, k);
    gen.setBuffer("x0", x0, n, 3);
    gen.addParameter("z", z, k, 3);
    gen.validate();
    std::vector<double> x = gen.computePositions();
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 3; j++) {
            double expected = x0[3 * i + j];
            for (int m = 0; m < k; m++)
                expected += modes[i * k + m] * z[m * 3 + j];
            REPARAM_ASSERT_CLOSE(x[3 * i + j], expected, 1e-14);
        }
}

/** With setSolvent: X[solute] = x0 + V z, X[solvent] = the solvent parameter, which putSolventAt moves. */
static void testSolvent() {
    int n = 3, k = 2;
    std::vector<double> modes = sequence(n * k, 0.7, 0.1), x0 = sequence(n * 3, 0.3, 0.2), z = sequence(k * 3, 1.1, 0.5);
    std::vector<double> water = sequence(2 * 3, 0.9, 0.4);
    ReparamGenerator gen("linear");
    gen.setBuffer("modes", modes, n, k);
    gen.setBuffer("x0", x0, n, 3);
    gen.addParameter("z", z, k, 3);
    gen.setSolvent({0, 2, 4}, {1, 3}, water);
    gen.validate();
    REPARAM_ASSERT(gen.getNumAtoms() == 5 && gen.getNumParameters() == 2 && gen.hasSolvent());
    REPARAM_ASSERT(gen.getParameterName(1) == "solvent_coordinates");
    std::vector<double> x = gen.computePositions();
    int solute[] = {0, 2, 4}, solvent[] = {1, 3};
    for (int r = 0; r < n; r++)
        for (int j = 0; j < 3; j++) {
            double expected = x0[3 * r + j];
            for (int m = 0; m < k; m++)
                expected += modes[r * k + m] * z[m * 3 + j];
            REPARAM_ASSERT_CLOSE(x[3 * solute[r] + j], expected, 1e-14);
        }
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 3; j++)
            REPARAM_ASSERT(x[3 * solvent[r] + j] == water[3 * r + j]);
    std::vector<OpenMM::Vec3> positions(5, OpenMM::Vec3(1.0, 2.0, 3.0));
    positions[3] = OpenMM::Vec3(-1.0, -2.0, -3.0);
    gen.putSolventAt(positions);
    REPARAM_ASSERT(gen.getParameterValue(1, 0) == 1.0 && gen.getParameterValue(1, 3) == -1.0);
    ReparamGenerator copy(gen);
    REPARAM_ASSERT(copy.computePositions() == gen.computePositions());
    bool threw = false;
    try {
        ReparamGenerator bad("linear");
        bad.setSolvent({0, 1}, {1}, std::vector<double>(3, 0.0));
    }
    catch (const OpenMM::OpenMMException&) {
        threw = true;
    }
    REPARAM_ASSERT(threw);
}

/** The GNN formula written out with plain loops, for one layer and hidden = 3. */
static void testGnn() {
    int n = 4, k = 2, h = 3;
    std::vector<double> modes = sequence(n * k, 0.9, 0.3), latent = sequence(n * h, 0.4, 0.0);
    std::vector<double> w = sequence(h * h, 0.5, 1.0), s = sequence(h * h, 0.6, 2.0), b = sequence(h, 0.8, 0.4);
    std::vector<double> wOut = sequence(2 * h * 3, 0.35, 0.7), bOut = sequence(3, 1.3, 0.2);
    std::vector<double> center = {0.1, -0.2, 0.3}, residual = sequence(n * 3, 0.25, 0.9);
    double scale = 1.7;
    ReparamGenerator gen("gnn");
    gen.setBuffer("modes", modes, n, k);
    gen.setBuffer("center", center, 3, 0);
    gen.setBuffer("residual", residual, n, 3);
    gen.setScale(scale);
    gen.addParameter("latent", latent, n, h);
    gen.addParameter("weights.0", w, h, h);
    gen.addParameter("self_weights.0", s, h, h);
    gen.addParameter("biases.0", b, h, 0);
    gen.addParameter("w_out", wOut, 2 * h, 3);
    gen.addParameter("b_out", bOut, 3, 0);
    gen.validate();
    // P H = V (V^T H)
    std::vector<double> vth(k * h, 0.0), ph(n * h, 0.0), h1(n * h, 0.0);
    for (int m = 0; m < k; m++)
        for (int c = 0; c < h; c++)
            for (int i = 0; i < n; i++)
                vth[m * h + c] += modes[i * k + m] * latent[i * h + c];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < h; c++)
            for (int m = 0; m < k; m++)
                ph[i * h + c] += modes[i * k + m] * vth[m * h + c];
    for (int i = 0; i < n; i++)
        for (int c = 0; c < h; c++) {
            double v = b[c];
            for (int d = 0; d < h; d++)
                v += ph[i * h + d] * w[d * h + c] + latent[i * h + d] * s[d * h + c];
            h1[i * h + c] = std::tanh(v);
        }
    std::vector<double> x = gen.computePositions();
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 3; j++) {
            double y = bOut[j];
            for (int c = 0; c < h; c++)
                y += latent[i * h + c] * wOut[c * 3 + j] + h1[i * h + c] * wOut[(h + c) * 3 + j];
            REPARAM_ASSERT_CLOSE(x[3 * i + j], center[j] + scale * y + residual[3 * i + j], 1e-12);
        }
    // Autograd gradient of sum(X * G) with respect to b_out is scale * column sums of G.
    std::vector<double> gvals = sequence(n * 3, 0.15, 0.05);
    at::Tensor G = at::empty({n, 3}, at::kDouble);
    std::copy(gvals.begin(), gvals.end(), G.data_ptr<double>());
    at::Tensor X = gen.forward();
    X.backward(G);
    at::Tensor gb = gen.parameters().back().grad();
    for (int j = 0; j < 3; j++) {
        double expected = 0.0;
        for (int i = 0; i < n; i++)
            expected += scale * gvals[3 * i + j];
        REPARAM_ASSERT_CLOSE(gb[j].item<double>(), expected, 1e-12);
    }
    // A copy is independent of the original.
    ReparamGenerator copy(gen);
    copy.setParameterValues(5, std::vector<double>{0.0, 0.0, 0.0});
    REPARAM_ASSERT(gen.getParameterValue(5, 0) == bOut[0]);
    // Shape errors are reported.
    bool threw = false;
    try {
        ReparamGenerator bad("gnn");
        bad.setBuffer("modes", modes, n, k + 1);
    }
    catch (const OpenMM::OpenMMException&) {
        threw = true;
    }
    REPARAM_ASSERT(threw);
}

/** First Adam step moves every element by lr against the sign of its gradient; clipping caps the norm. */
static void testAdamAndClipping() {
    at::Tensor p = at::tensor({1.0, -2.0, 3.0}, at::kDouble).requires_grad_(true);
    std::vector<at::Tensor> params{p};
    AdamOptimizer adam(params, 0.1);
    at::Tensor loss = (p * at::tensor({4.0, -3.0, 0.0}, at::kDouble)).sum() * 100.0;  // grad = (400, -300, 0)
    loss.backward();
    double norm = clipGradNorm(params, 5.0);
    REPARAM_ASSERT_CLOSE(norm, 500.0, 1e-12);
    REPARAM_ASSERT_CLOSE(at::linalg_vector_norm(p.grad(), 2).item<double>(), 5.0, 1e-6);
    adam.step();
    REPARAM_ASSERT_CLOSE(p[0].item<double>(), 1.0 - 0.1, 1e-6);
    REPARAM_ASSERT_CLOSE(p[1].item<double>(), -2.0 + 0.1, 1e-6);
    REPARAM_ASSERT_CLOSE(p[2].item<double>(), 3.0, 1e-12);
    REPARAM_ASSERT(adam.getStepCount() == 1);
    adam.zeroGrad();
    REPARAM_ASSERT(!p.grad().defined());
}

int main() {
    try {
        testLinear();
        testGnn();
        testSolvent();
        testAdamAndClipping();
    }
    catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
