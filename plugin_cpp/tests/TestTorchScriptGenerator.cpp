/*
 * Unit tests of the "torchscript" generator: a TorchScript module built here with torch::jit (a parameter, a
 * buffer, a submodule with a parameter of its own and a frozen one), saved to bytes as torch.jit.save does, and
 * loaded by ReparamGenerator::setModule. No Python and no stored binary file are needed.
 */
#include "AdamOptimizer.h"
#include "ReparamGenerator.h"
#include "openmm/OpenMMException.h"
#include "TestUtilities.h"
#include <torch/csrc/jit/api/module.h>
#include <cmath>
#include <iostream>
#include <sstream>
#include <vector>

using namespace ReparamPlugin;

static const int N = 4;

static at::Tensor values(int rows, int cols, double a, double b) {
    at::Tensor t = at::empty({rows, cols}, at::kDouble);
    for (int i = 0; i < rows * cols; i++)
        t.data_ptr<double>()[i] = std::sin(a * i + b);
    return t;
}

/** The bytes of a module X = x0 + s * tanh(w) + child.forward(), child.forward() = shift * child.b. */
static std::string moduleBytes(const std::string& forward = "") {
    torch::jit::Module child("Child");
    child.register_parameter("b", at::full({3}, 0.25, at::kDouble).requires_grad_(true), false);
    child.register_parameter("shift", at::full({1}, 2.0, at::kDouble), false);  // frozen: requires_grad False
    child.define("def forward(self):\n    return self.shift * self.b\n");
    torch::jit::Module module("Net");
    module.register_parameter("w", values(N, 3, 0.7, 0.1).requires_grad_(true), false);
    module.register_parameter("s", at::full({1}, 0.5, at::kDouble).requires_grad_(true), false);
    module.register_buffer("x0", values(N, 3, 0.3, 0.2));
    module.register_module("child", child);
    module.define(forward.empty() ?
        "def forward(self):\n    return self.x0 + self.s * torch.tanh(self.w) + self.child.forward()\n" : forward);
    std::ostringstream bytes;
    module.save(bytes);
    return bytes.str();
}

static double expected(int i, int j) {
    return std::sin(0.3 * (3 * i + j) + 0.2) + 0.5 * std::tanh(std::sin(0.7 * (3 * i + j) + 0.1)) + 2.0 * 0.25;
}

/** X[i][j] from the generator's current parameter values (w, s, child.b). */
static double current(const ReparamGenerator& gen, int i, int j) {
    double w = gen.getParameterValue(0, 3 * i + j), s = gen.getParameterValue(1, 0), b = gen.getParameterValue(2, j);
    return std::sin(0.3 * (3 * i + j) + 0.2) + s * std::tanh(w) + 2.0 * b;
}

template <class F>
static bool throwsOpenMM(F f) {
    try {
        f();
    }
    catch (const OpenMM::OpenMMException&) {
        return true;
    }
    return false;
}

/** The module's function, parameters (names, order, requires_grad), gradients and Adam on them. */
static void testModule() {
    ReparamGenerator gen("torchscript");
    REPARAM_ASSERT(gen.getKind() == "torchscript");
    gen.setModule(moduleBytes());
    gen.validate();
    REPARAM_ASSERT(gen.getNumAtoms() == N);
    REPARAM_ASSERT(gen.getNumModes() == 0);
    REPARAM_ASSERT(gen.getNumParameters() == 3);  // w, s, child.b; child.shift is frozen
    REPARAM_ASSERT(gen.getParameterName(0) == "w");
    REPARAM_ASSERT(gen.getParameterName(1) == "s");
    REPARAM_ASSERT(gen.getParameterName(2) == "child.b");
    REPARAM_ASSERT(gen.getParameterSize(0) == 3 * N);
    std::vector<double> x = gen.computePositions();
    REPARAM_ASSERT((int) x.size() == 3 * N);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 3; j++)
            REPARAM_ASSERT_CLOSE(x[3 * i + j], expected(i, j), 1e-14);
    // d sum(X) / d s = sum tanh(w), d sum(X) / d child.b = 2 N per component.
    at::Tensor X = gen.forward();
    X.sum().backward();
    double tanhSum = 0.0;
    for (int e = 0; e < 3 * N; e++)
        tanhSum += std::tanh(std::sin(0.7 * e + 0.1));
    REPARAM_ASSERT_CLOSE(gen.parameters()[1].grad().item<double>(), tanhSum, 1e-12);
    for (int j = 0; j < 3; j++)
        REPARAM_ASSERT_CLOSE(gen.parameters()[2].grad()[j].item<double>(), 2.0 * N, 1e-12);
    // An Adam step on the generator's parameters moves the module's output (the first step is lr * sign(grad)).
    AdamOptimizer adam(gen.parameters(), 0.1);
    adam.step();
    REPARAM_ASSERT_CLOSE(gen.getParameterValue(1, 0), 0.5 - 0.1 * (tanhSum > 0 ? 1 : -1), 1e-6);
    REPARAM_ASSERT_CLOSE(gen.getParameterValue(2, 0), 0.25 - 0.1, 1e-6);
    x = gen.computePositions();
    REPARAM_ASSERT(std::fabs(x[0] - expected(0, 0)) > 1e-3);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < 3; j++)
            REPARAM_ASSERT_CLOSE(x[3 * i + j], current(gen, i, j), 1e-12);
    // setParameterValues writes into the module; a copy is a module of its own with the current values.
    gen.setParameterValues(1, std::vector<double>{1.5});
    REPARAM_ASSERT_CLOSE(gen.computePositions()[5], current(gen, 1, 2), 1e-12);
    ReparamGenerator copy(gen);
    REPARAM_ASSERT(copy.getNumParameters() == 3 && copy.getParameterName(2) == "child.b");
    REPARAM_ASSERT(copy.computePositions() == gen.computePositions());
    copy.setParameterValues(1, std::vector<double>{0.0});
    REPARAM_ASSERT(gen.getParameterValue(1, 0) == 1.5);
    REPARAM_ASSERT(copy.parameters()[0].requires_grad() && copy.parameters()[0].is_leaf());
}

/** With solvent: the module covers the solute rows, the solvent coordinates come last. */
static void testSolvent() {
    ReparamGenerator gen("torchscript");
    gen.setModule(moduleBytes());
    std::vector<int> solute{0, 2, 3, 5}, solvent{1, 4};
    std::vector<double> coordinates{9.0, 9.1, 9.2, 8.0, 8.1, 8.2};
    gen.setSolvent(solute, solvent, coordinates);
    gen.validate();
    REPARAM_ASSERT(gen.getNumAtoms() == N + 2);
    REPARAM_ASSERT(gen.getNumParameters() == 4 && gen.getParameterName(3) == "solvent_coordinates");
    std::vector<double> x = gen.computePositions();
    for (int a = 0; a < N; a++)
        for (int j = 0; j < 3; j++)
            REPARAM_ASSERT_CLOSE(x[3 * solute[a] + j], expected(a, j), 1e-14);
    REPARAM_ASSERT(x[3 * 4 + 1] == 8.1);
    ReparamGenerator copy(gen);
    REPARAM_ASSERT(copy.computePositions() == x);
}

/** Bad input is refused in one line. */
static void testErrors() {
    REPARAM_ASSERT(throwsOpenMM([] { ReparamGenerator("torchscript").setModule("not a zip archive"); }));
    REPARAM_ASSERT(throwsOpenMM([] {
        ReparamGenerator("torchscript").setModule(moduleBytes("def forward(self):\n    return self.w.sum()\n"));
    }));
    REPARAM_ASSERT(throwsOpenMM([] {
        ReparamGenerator("torchscript").setModule(moduleBytes("def forward(self):\n    return (self.w, self.w)\n"));
    }));
    REPARAM_ASSERT(throwsOpenMM([] { ReparamGenerator("torchscript").validate(); }));
    REPARAM_ASSERT(throwsOpenMM([] { ReparamGenerator("torchscript").setBuffer("x0", {1.0, 2.0, 3.0}, 1, 3); }));
    REPARAM_ASSERT(throwsOpenMM([] { ReparamGenerator("gnn").setModule(moduleBytes()); }));
    REPARAM_ASSERT(throwsOpenMM([] {
        ReparamGenerator gen("torchscript");
        gen.setModule(moduleBytes());
        gen.setModule(moduleBytes());
    }));
    try {
        ReparamGenerator("torchscript").setModule("not a zip archive");
    }
    catch (const OpenMM::OpenMMException& e) {
        REPARAM_ASSERT(std::string(e.what()).find('\n') == std::string::npos);
    }
}

int main() {
    try {
        testModule();
        testSolvent();
        testErrors();
    }
    catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
