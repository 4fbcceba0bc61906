/*
 * Tests of runFireStage on real Contexts (Reference platform): a bent chain with harmonic bonds and a soft
 * repulsion, with and without a constrained bond and a massless (fixed) particle; it must converge to the
 * tolerance, keep the constraint, never move the fixed particle, and stop by its documented rules.
 */
#include "FireStage.h"
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

/** RMS of the raw forces over the movable particles (no constraints in the System it is used on). */
static double rmsForce(Context& context, int movable) {
    std::vector<Vec3> f = context.getState(State::Forces).getForces();
    double sum = 0.0;
    for (int i = 0; i < movable; i++)
        sum += f[i].dot(f[i]);
    return std::sqrt(sum / movable);
}

static void testSettingsMustBeSet() {
    FireStageSettings unset;
    bool threw = false;
    try {
        unset.validate();
    }
    catch (const OpenMMException& e) {
        threw = std::string(e.what()).find("FireStageSettings.name") != std::string::npos;
    }
    REPARAM_ASSERT(threw);
    FireStageSettings s = fireStageSettings(10);
    s.validate();
    s.initialDelay = -1;
    threw = false;
    try {
        s.validate();
    }
    catch (const OpenMMException& e) {
        threw = std::string(e.what()).find("initialDelay") != std::string::npos;
    }
    REPARAM_ASSERT(threw);
    REPARAM_ASSERT(FireStageSettings::fieldNames().size() == 15);
}

/** Unconstrained chain: converges to 1 kJ/mol/nm, lowering the energy; the Context holds the converged point. */
static void testConverges() {
    std::unique_ptr<System> system(createChainSystem(false, false));
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    double start = context.getState(State::Energy).getPotentialEnergy();
    FireStageOutcome outcome = runFireStage(context, fireStageSettings(5000), 1.0);
    REPARAM_ASSERT(outcome.stopReason == "converged");
    REPARAM_ASSERT(outcome.iterations == outcome.getHistorySize() && outcome.iterations > 10);
    REPARAM_ASSERT_CLOSE(outcome.initialEnergy, start, 1e-12);
    double final = context.getState(State::Energy).getPotentialEnergy();
    REPARAM_ASSERT_CLOSE(final, outcome.finalEnergy, 1e-10);
    REPARAM_ASSERT(final < start);
    REPARAM_ASSERT(rmsForce(context, N) <= 1.0);
}

/** A constrained bond and a fixed particle: the constraint is held, the fixed particle never moves. */
static void testConstraintsAndFixedParticles() {
    std::unique_ptr<System> system(createChainSystem(true, true));
    VerletIntegrator integrator(0.001);
    integrator.setConstraintTolerance(1e-8);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    std::vector<Vec3> x0 = chainStartPositions();
    context.setPositions(x0);
    FireStageOutcome outcome = runFireStage(context, fireStageSettings(5000), 1.0);
    REPARAM_ASSERT(outcome.stopReason == "converged");
    REPARAM_ASSERT(outcome.finalRmsForce <= 1.0);
    std::vector<Vec3> x = context.getState(State::Positions).getPositions();
    Vec3 d = x[0] - x[1];
    REPARAM_ASSERT_CLOSE(std::sqrt(d.dot(d)), 0.15, 1e-6);
    for (int j = 0; j < 3; j++)
        REPARAM_ASSERT(x[N - 1][j] == x0[N - 1][j]);
}

/** The stop rules: max_steps, an immediate time limit, stuck (an unreachable tolerance, no uphill allowed). */
static void testStopRules() {
    std::unique_ptr<System> system(createChainSystem(false, false));
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    FireStageOutcome few = runFireStage(context, fireStageSettings(7), 1e-3);
    REPARAM_ASSERT(few.stopReason == "max_steps" && few.iterations == 7 && few.energyEvaluations == 8);
    REPARAM_ASSERT(few.finalEnergy < few.initialEnergy);
    context.setPositions(chainStartPositions());
    FireStageSettings limited = fireStageSettings(100);
    limited.timeLimit = 0.0;
    FireStageOutcome none = runFireStage(context, limited, 1e-3);
    REPARAM_ASSERT(none.stopReason == "deadline" && none.iterations == 0);
    context.setPositions(chainStartPositions());
    FireStageSettings strict = fireStageSettings(100000);
    strict.maxUphill = 0;
    strict.initialDelay = 0;
    FireStageOutcome stuck = runFireStage(context, strict, 1e-12);
    REPARAM_ASSERT(stuck.stopReason == "stuck");
    REPARAM_ASSERT(stuck.finalEnergy <= stuck.energies[stuck.energies.size() - 1]);  // left at the lowest point
}

int main() {
    try {
        testSettingsMustBeSet();
        testConverges();
        testConstraintsAndFixedParticles();
        testStopRules();
    }
    catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
