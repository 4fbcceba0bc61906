/*
 * Tests of PreconMatrix and PreconStage on real Contexts (Reference platform): the envelope L D L^T solve is
 * exact, the stage converges on a bent chain (harmonic bonds, soft repulsion) with P = mu I and with the chain's
 * Laplacian + mu I, holds a constrained bond, never moves a massless particle, stops by its documented rules
 * and returns "rebuild" when a coupled atom moved farther than rebuildDistance, then runs on after a new P, and
 * passes an energy step within the noise on its slope.
 */
#include "ArmijoRule.h"
#include "PreconStage.h"
#include "TestChain.h"
#include "TestStageSettings.h"
#include "TestUtilities.h"
#include "OpenMM.h"
#include <iostream>
#include <memory>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

static const int N = ChainLength;

/** CSR of the n x n chain Laplacian with bond weight k, plus mu I (laplacian false: mu I alone). */
static PreconMatrix chainMatrix(int n, double k, double mu, bool laplacian) {
    std::vector<double> indptr(1, 0.0), indices, values;
    for (int i = 0; i < n; i++) {
        double degree = 0.0;
        for (int j = i - 1; j <= i + 1; j += 2)
            if (laplacian && j >= 0 && j < n) {
                indices.push_back(j);
                values.push_back(-k);
                degree += k;
            }
        indices.push_back(i);
        values.push_back(degree + mu);
        indptr.push_back(indices.size());
    }
    return PreconMatrix(n, indptr, indices, values);
}

static std::vector<int> allParticles(int n) {
    std::vector<int> all;
    for (int i = 0; i < n; i++)
        all.push_back(i);
    return all;
}

static double rmsForce(Context& context, int movable) {
    std::vector<Vec3> f = context.getState(State::Forces).getForces();
    double sum = 0.0;
    for (int i = 0; i < movable; i++)
        sum += f[i].dot(f[i]);
    return std::sqrt(sum / movable);
}

static void testSettingsMustBeSet() {
    PreconStageSettings unset;
    bool threw = false;
    try {
        unset.validate();
    }
    catch (const OpenMMException& e) {
        threw = std::string(e.what()).find("PreconStageSettings.name") != std::string::npos;
    }
    REPARAM_ASSERT(threw);
    PreconStageSettings s = preconStageSettings(10, 0.5);
    s.validate();
    s.memory = 0;
    threw = false;
    try {
        s.validate();
    }
    catch (const OpenMMException& e) {
        threw = std::string(e.what()).find("memory") != std::string::npos;
    }
    REPARAM_ASSERT(threw);
    REPARAM_ASSERT(PreconStageSettings::fieldNames().size() == 7);
}

/** P x = v for the solved x: a banded matrix with one long-range coupling (a long envelope row), and mu I. */
static void testSolveIsExact() {
    int n = 9;
    std::vector<std::vector<double> > dense(n, std::vector<double>(n, 0.0));
    for (int i = 0; i < n; i++) {
        dense[i][i] = 10.0 + i;
        if (i > 0)
            dense[i][i - 1] = dense[i - 1][i] = -1.0 - 0.1 * i;
    }
    dense[7][1] = dense[1][7] = -2.5;
    std::vector<double> indptr(1, 0.0), indices, values;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++)
            if (dense[i][j] != 0.0) {
                indices.push_back(j);
                values.push_back(dense[i][j]);
            }
        indptr.push_back(indices.size());
    }
    PreconMatrix matrix(n, indptr, indices, values);
    std::vector<double> v(3 * n), x;
    for (int i = 0; i < 3 * n; i++)
        v[i] = std::sin(1.3 * i + 0.2);
    x = v;
    matrix.solve(x);
    for (int i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) {
            double product = 0.0;
            for (int j = 0; j < n; j++)
                product += dense[i][j] * x[3 * j + c];
            REPARAM_ASSERT_CLOSE(product, v[3 * i + c], 1e-13);
        }
    PreconMatrix diagonal = chainMatrix(n, 0.0, 7.0, false);
    REPARAM_ASSERT(diagonal.envelopeSize() == 0);
    x = v;
    diagonal.solve(x);
    for (int i = 0; i < 3 * n; i++)
        REPARAM_ASSERT(x[i] == v[i] / 7.0);
}

/** Unconstrained chain, P = mu I and P = L + mu I: converged to 1 kJ/mol/nm, lower, the Context at the end. */
static void testConverges() {
    std::unique_ptr<System> system(createChainSystem(false, false));
    for (bool laplacian : {false, true}) {
        VerletIntegrator integrator(0.001);
        Context context(*system, integrator, Platform::getPlatformByName("Reference"));
        context.setPositions(chainStartPositions());
        double start = context.getState(State::Energy).getPotentialEnergy();
        PreconMatrix matrix = chainMatrix(N, 5e4, 100.0, laplacian);
        std::vector<int> coupled = laplacian ? allParticles(N) : std::vector<int>();
        PreconStageOutcome outcome = runPreconStage(context, preconStageSettings(5000, 0.5), matrix, coupled, 1.0);
        REPARAM_ASSERT(outcome.stopReason == "converged");
        REPARAM_ASSERT(outcome.iterations == outcome.getHistorySize() && outcome.iterations > 3);
        REPARAM_ASSERT(outcome.energyEvaluations > outcome.iterations);
        REPARAM_ASSERT_CLOSE(outcome.initialEnergy, start, 1e-12);
        double final = context.getState(State::Energy).getPotentialEnergy();
        REPARAM_ASSERT_CLOSE(final, outcome.finalEnergy, 1e-10);
        REPARAM_ASSERT(final < start && rmsForce(context, N) <= 1.0);
        for (size_t i = 1; i < outcome.energies.size(); i++)
            REPARAM_ASSERT(outcome.energies[i] <= outcome.energies[i - 1]);  // smooth: Armijo's test, monotone
    }
}

/** A constrained bond and a fixed particle (P over the N-1 movable ones): constraint held, fixed one unmoved. */
static void testConstraintsAndFixedParticles() {
    std::unique_ptr<System> system(createChainSystem(true, true));
    VerletIntegrator integrator(0.001);
    integrator.setConstraintTolerance(1e-8);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    std::vector<Vec3> x0 = chainStartPositions();
    context.setPositions(x0);
    PreconStageOutcome outcome = runPreconStage(context, preconStageSettings(5000, 0.5), chainMatrix(N - 1, 5e4, 100.0, true),
                                                allParticles(N - 1), 1.0);
    REPARAM_ASSERT(outcome.stopReason == "converged" && outcome.finalRmsForce <= 1.0);
    std::vector<Vec3> x = context.getState(State::Positions).getPositions();
    Vec3 d = x[0] - x[1];
    REPARAM_ASSERT_CLOSE(std::sqrt(d.dot(d)), 0.15, 1e-6);
    for (int j = 0; j < 3; j++)
        REPARAM_ASSERT(x[N - 1][j] == x0[N - 1][j]);
}

/** Two particles in a harmonic well whose energy steps up 0.1 kJ/mol where x crosses 0.01 nm (as energies step
 *  where pairs cross an unswitched cutoff), E about -4000, the second at the centre: from x = 0.012 nm no trial
 *  across the step lowers the energy, so only the slope test (ArmijoRule.h) passes it; the stage converges at the
 *  well's centre, and the one rise it accepted is within ENERGY_NOISE |E|. */
static void testSlopeTestPassesAnEnergyStep() {
    System system;
    CustomExternalForce* well = new CustomExternalForce("-2000 + 500*(x^2 + y^2 + z^2) + 0.1*step(0.01 - x)");
    for (int i = 0; i < 2; i++) {
        system.addParticle(1.0);
        well->addParticle(i, std::vector<double>());
    }
    system.addForce(well);
    VerletIntegrator integrator(0.001);
    Context context(system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions({Vec3(0.012, 0.0, 0.0), Vec3()});
    PreconStageSettings settings = preconStageSettings(100, 0.5);
    settings.maxStep = 0.05;
    PreconStageOutcome outcome = runPreconStage(context, settings, chainMatrix(2, 0.0, 100.0, false),
                                                std::vector<int>(), 1.0);
    REPARAM_ASSERT(outcome.stopReason == "converged" && outcome.finalRmsForce <= 1.0);
    REPARAM_ASSERT(std::fabs(context.getState(State::Positions).getPositions()[0][0]) <= 1e-3);
    double previous = outcome.initialEnergy, largestRise = -1.0;
    for (double energy : outcome.energies) {
        largestRise = std::max(largestRise, energy - previous);
        previous = energy;
    }
    REPARAM_ASSERT(largestRise > 0 && largestRise <= ENERGY_NOISE * std::fabs(outcome.initialEnergy));
}

/** max_steps, an immediate time limit, and "rebuild" (a tiny rebuildDistance), after which run() goes on. */
static void testStopRulesAndRebuild() {
    std::unique_ptr<System> system(createChainSystem(false, false));
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    PreconMatrix matrix = chainMatrix(N, 5e4, 100.0, true);
    context.setPositions(chainStartPositions());
    PreconStageOutcome few = runPreconStage(context, preconStageSettings(3, 0.5), matrix, allParticles(N), 1e-3);
    REPARAM_ASSERT(few.stopReason == "max_steps" && few.iterations == 3 && few.finalEnergy < few.initialEnergy);
    context.setPositions(chainStartPositions());
    PreconStageSettings limited = preconStageSettings(100, 0.5);
    limited.timeLimit = 0.0;
    PreconStageOutcome none = runPreconStage(context, limited, matrix, allParticles(N), 1e-3);
    REPARAM_ASSERT(none.stopReason == "deadline" && none.iterations == 0 && none.energyEvaluations == 1);
    context.setPositions(chainStartPositions());
    PreconStageSettings close = preconStageSettings(5000, 0.5);
    close.rebuildDistance = 1e-3;
    PreconStage stage(context, close, matrix, allParticles(N), 1.0);
    PreconStageOutcome first = stage.run(5000, false, NULL);
    REPARAM_ASSERT(first.stopReason == "rebuild" && first.iterations >= 1 && first.rebuilds == 0);
    int rebuilds = 0;
    PreconStageOutcome next = first;
    while (next.stopReason == "rebuild" && rebuilds < 1000) {
        stage.setPreconditioner(matrix);
        rebuilds++;
        next = stage.run(5000, false, NULL);
    }
    REPARAM_ASSERT(next.stopReason == "converged" && next.rebuilds == rebuilds && rebuilds >= 2);
    PreconStageOutcome stopped = stage.run(10, true, NULL);
    REPARAM_ASSERT(stopped.stopReason == "converged" && stopped.iterations == 0);
}

int main() {
    try {
        testSettingsMustBeSet();
        testSolveIsExact();
        testConverges();
        testConstraintsAndFixedParticles();
        testStopRulesAndRebuild();
        testSlopeTestPassesAnEnergyStep();
    }
    catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
