/*
 * Tests of runAdamStage and ReparamIntegrator on real Contexts (Reference platform): a small chain of particles
 * with harmonic bonds and a soft repulsion, minimized by a linear slow-mode generator or on its coordinates; and
 * two particles with a singular attraction, where the collapse guard must stop the optimizer.
 */
#include "AdamStage.h"
#include "NonFiniteEnergyException.h"
#include "ReparamIntegrator.h"
#include "TestChain.h"
#include "TestGenerators.h"
#include "TestStageSettings.h"
#include "TestUtilities.h"
#include "OpenMM.h"
#include <iostream>
#include <memory>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

template <class F>
static bool throwsOpenMMException(F f) {
    try {
        f();
    }
    catch (const OpenMMException&) {
        return true;
    }
    return false;
}

/** Unset settings are rejected: C++ has no defaults. */
static void testSettingsMustBeSet() {
    AdamStageSettings unset;
    REPARAM_ASSERT(throwsOpenMMException([&]() { unset.validateStep(); }));
    AdamStageSettings step = adamStepSettings(0.01, 0.07);
    step.validateStep();
    REPARAM_ASSERT(throwsOpenMMException([&]() { step.validate(); }));  // the stage fields are unset
    AdamStageSettings stage = adamStageSettings(0.01, 0.07, 10, 5);
    stage.validate();
    stage.timeLimit = NAN;
    REPARAM_ASSERT(throwsOpenMMException([&]() { stage.validate(); }));
    std::vector<Vec3> x0 = chainStartPositions();
    REPARAM_ASSERT(throwsOpenMMException([&]() { ReparamIntegrator(linearGenerator(x0, 3), unset); }));
}

/** step() lowers the energy; the step count advances; the best positions are restored exactly. */
static void testIntegratorLowersEnergy() {
    std::unique_ptr<System> system(createChainSystem(false));
    std::vector<Vec3> x0 = chainStartPositions();
    ReparamIntegrator integrator(linearGenerator(x0, 6), adamStepSettings(0.01, 0.07));
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(x0);
    double start = contextEnergy(context);
    integrator.step(1);
    REPARAM_ASSERT_CLOSE(integrator.getLastEnergy(), start, 1e-10);  // the first step evaluates the start
    integrator.step(199);
    REPARAM_ASSERT(integrator.getNumStepsTaken() == 200);
    REPARAM_ASSERT(context.getStepCount() == 200);
    REPARAM_ASSERT(integrator.getBestEnergy() < 0.5 * start);
    REPARAM_ASSERT(!integrator.getCollapsed());
    integrator.applyBestPositions();
    REPARAM_ASSERT_CLOSE(contextEnergy(context), integrator.getBestEnergy(), 1e-10);
    REPARAM_ASSERT(context.getState(State::Energy).getKineticEnergy() == 0.0);  // no velocities were set
}

/** Inside a CompoundIntegrator: minimize, then Verlet MD in the same Context conserves energy. */
static void testCompoundIntegrator() {
    std::unique_ptr<System> system(createChainSystem(false));
    std::vector<Vec3> x0 = chainStartPositions();
    CompoundIntegrator compound;
    ReparamIntegrator* reparam = new ReparamIntegrator(linearGenerator(x0, 6), adamStepSettings(0.01, 0.07));
    compound.addIntegrator(reparam);
    compound.addIntegrator(new VerletIntegrator(0.0005));
    Context context(*system, compound, Platform::getPlatformByName("Reference"));
    context.setPositions(x0);
    double start = contextEnergy(context);
    compound.step(100);
    reparam->applyBestPositions();
    double minimized = contextEnergy(context);
    REPARAM_ASSERT(minimized < start);
    compound.setCurrentIntegrator(1);
    context.setVelocitiesToTemperature(50.0, 1);
    State s0 = context.getState(State::Energy);
    double total0 = s0.getPotentialEnergy() + s0.getKineticEnergy();
    compound.step(200);
    State s1 = context.getState(State::Energy | State::Positions);
    double total1 = s1.getPotentialEnergy() + s1.getKineticEnergy();
    REPARAM_ASSERT(std::isfinite(total1));
    REPARAM_ASSERT_CLOSE(total1, total0, 1e-2);
    REPARAM_ASSERT(context.getStepCount() == 300);
}

/** A generator stage: counts, history, stop reasons, Context left at the best point, weights trained. */
static void testGeneratorStage() {
    std::unique_ptr<System> system(createChainSystem(false));
    std::vector<Vec3> x0 = chainStartPositions();
    VerletIntegrator verlet(0.001);
    Context context(*system, verlet, Platform::getPlatformByName("Reference"));
    context.setPositions(x0);
    double start = contextEnergy(context);
    ReparamGenerator gen = linearGenerator(x0, 4);
    AdamStageOutcome outcome = runAdamStage(context, &gen, adamStageSettings(0.01, 0.07, 60, 1000));
    REPARAM_ASSERT(outcome.stopReason == "max_steps" && !outcome.collapsed);
    REPARAM_ASSERT(outcome.iterations == 60 && outcome.energyEvaluations == 60 && outcome.getHistorySize() == 60);
    REPARAM_ASSERT_CLOSE(outcome.initialEnergy, start, 1e-10);
    REPARAM_ASSERT_CLOSE(outcome.energies[0], start, 1e-10);
    REPARAM_ASSERT(outcome.bestEnergy < 0.5 * start);
    REPARAM_ASSERT_CLOSE(contextEnergy(context), outcome.bestEnergy, 1e-10);
    for (int i = 1; i < 60; i++)
        REPARAM_ASSERT(outcome.times[i] >= outcome.times[i - 1]);
    REPARAM_ASSERT(gen.getParameterValue(0, 0) != 0.0);  // trained in place
    // patience: a tiny learning rate never improves by relTol, so the stage stops after patience steps.
    context.setPositions(x0);
    ReparamGenerator slow = linearGenerator(x0, 4);
    AdamStageSettings settings = adamStageSettings(1e-9, 0.07, 100, 5);
    settings.relTol = 0.1;
    outcome = runAdamStage(context, &slow, settings);
    REPARAM_ASSERT(outcome.stopReason == "patience" && outcome.iterations == 6);
    // A force tolerance every step meets: the first step ends the stage ("converged") and is its best point.
    context.setPositions(x0);
    settings = adamStageSettings(0.01, 0.07, 100, 100);
    settings.forceTolerance = 1e12;
    outcome = runAdamStage(context, &slow, settings);
    REPARAM_ASSERT(outcome.stopReason == "converged" && outcome.iterations == 1 && !std::isnan(outcome.bestEnergy));
    settings.forceTolerance = -1.0;
    REPARAM_ASSERT(throwsOpenMMException([&]() { runAdamStage(context, &slow, settings); }));
    context.setPositions(x0);
    // A time limit already spent: no step at all, the Context untouched.
    settings = adamStageSettings(0.01, 0.07, 100, 100);
    settings.timeLimit = 0.0;
    outcome = runAdamStage(context, &slow, settings);
    REPARAM_ASSERT(outcome.stopReason == "deadline" && outcome.iterations == 0 && std::isnan(outcome.bestEnergy));
    REPARAM_ASSERT_CLOSE(contextEnergy(context), start, 1e-12);
    // Incomplete settings are refused.
    settings.patience = -1;
    REPARAM_ASSERT(throwsOpenMMException([&]() { runAdamStage(context, &slow, settings); }));
}

/** The coordinate stage with a constraint: the constraint holds and the energy goes down. */
static void testCoordinateStage() {
    std::unique_ptr<System> system(createChainSystem(true));
    VerletIntegrator verlet(0.001);
    Context context(*system, verlet, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    context.applyConstraints(1e-8);
    double start = contextEnergy(context);
    AdamStageSettings settings = adamStageSettings(1e-3, 0.07, 40, 1000);
    settings.name = "fine";
    AdamStageOutcome outcome = runAdamStage(context, NULL, settings);
    REPARAM_ASSERT(outcome.iterations == 40 && outcome.stopReason == "max_steps");
    REPARAM_ASSERT(outcome.bestEnergy < start);
    REPARAM_ASSERT_CLOSE(contextEnergy(context), outcome.bestEnergy, 1e-10);
    State state = context.getState(State::Positions);
    Vec3 d = state.getPositions()[1] - state.getPositions()[0];
    REPARAM_ASSERT_CLOSE(std::sqrt(d.dot(d)), 0.15, 1e-4);
}

/** Two particles pulled together by -10/r: Adam walks them into the singularity unless the guard stops it. */
static System* createSingularPair() {
    System* system = new System();
    system->addParticle(1.0);
    system->addParticle(1.0);
    CustomBondForce* attraction = new CustomBondForce("-10/r");
    attraction->addBond(0, 1);
    system->addForce(attraction);
    return system;
}

static double pairDistance(Context& context) {
    State state = context.getState(State::Positions);
    Vec3 d = state.getPositions()[1] - state.getPositions()[0];
    return std::sqrt(d.dot(d));
}

static void testCollapseGuard() {
    std::unique_ptr<System> system(createSingularPair());
    std::vector<Vec3> x0 = {Vec3(0, 0, 0), Vec3(0.53, 0, 0)};
    VerletIntegrator verlet(0.001);
    Context context(*system, verlet, Platform::getPlatformByName("Reference"));
    context.setPositions(x0);
    AdamStageSettings settings = adamStageSettings(0.05, 0.07, 100, 100);
    AdamStageOutcome outcome = runAdamStage(context, NULL, settings);
    REPARAM_ASSERT(outcome.stopReason == "collapse" && outcome.collapsed);
    REPARAM_ASSERT(outcome.iterations == outcome.getHistorySize() + 1);  // the collapsing step is not recorded
    REPARAM_ASSERT(outcome.iterations < 100);
    REPARAM_ASSERT(pairDistance(context) > 0.07);  // left at the best, non-suspect point
    REPARAM_ASSERT_CLOSE(contextEnergy(context), outcome.bestEnergy, 1e-10);
    // With the guard off the same stage falls into the singularity.
    context.setPositions(x0);
    settings.collapseDistance = 0.0;
    settings.maxSteps = outcome.iterations;
    AdamStageOutcome unguarded = runAdamStage(context, NULL, settings);
    REPARAM_ASSERT(unguarded.stopReason != "collapse");
    REPARAM_ASSERT(unguarded.energies.back() < -10 / 0.07);  // its last step lies inside the singular region

    // The integrator stops stepping at the collapse and keeps the best positions.
    std::vector<double> identity = {1, 0, 0, 1}, flat = {0, 0, 0, 0.53, 0, 0};
    ReparamGenerator gen("linear");
    gen.setBuffer("modes", identity, 2, 2);
    gen.setBuffer("x0", flat, 2, 3);
    gen.addParameter("z", std::vector<double>(6, 0.0), 2, 3);
    ReparamIntegrator integrator(gen, adamStepSettings(0.05, 0.07));
    Context other(*system, integrator, Platform::getPlatformByName("Reference"));
    other.setPositions(x0);
    integrator.step(100);
    REPARAM_ASSERT(integrator.getCollapsed());
    REPARAM_ASSERT(integrator.getNumStepsTaken() == outcome.iterations);  // the same steps as the stage
    REPARAM_ASSERT(other.getStepCount() == outcome.iterations);
    REPARAM_ASSERT(pairDistance(other) > 0.07);
    REPARAM_ASSERT_CLOSE(contextEnergy(other), outcome.bestEnergy, 1e-8);
    integrator.step(10);
    REPARAM_ASSERT(integrator.getNumStepsTaken() == outcome.iterations);
}

/** A non-finite energy raises its own exception type (mapped to NonFiniteEnergyError in Python). */
static void testNonFiniteEnergy() {
    System system;
    system.addParticle(1.0);
    system.addParticle(1.0);
    CustomBondForce* force = new CustomBondForce("1/(r-1)");
    force->addBond(0, 1);
    system.addForce(force);
    VerletIntegrator verlet(0.001);
    Context context(system, verlet, Platform::getPlatformByName("Reference"));
    context.setPositions(std::vector<Vec3>{Vec3(0, 0, 0), Vec3(1, 0, 0)});
    bool threw = false;
    try {
        runAdamStage(context, NULL, adamStageSettings(0.01, 0.07, 5, 5));
    }
    catch (const NonFiniteEnergyException&) {
        threw = true;
    }
    REPARAM_ASSERT(threw);
}

int main() {
    try {
        testSettingsMustBeSet();
        testIntegratorLowersEnergy();
        testCompoundIntegrator();
        testGeneratorStage();
        testCoordinateStage();
        testCollapseGuard();
        testNonFiniteEnergy();
    }
    catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
