/*
 * Tests of ReparamIntegrator and runReparamStages on real Contexts (Reference platform): a small chain of
 * particles with harmonic bonds and a soft repulsion, minimized by a linear slow-mode generator.
 */
#include "ReparamIntegrator.h"
#include "ReparamStages.h"
#include "TestUtilities.h"
#include "OpenMM.h"
#include "openmm/serialization/XmlSerializer.h"
#include <sstream>
#include <iostream>
#include <memory>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

static const int N = 12;

/** A bent chain: bonds of rest length 0.15 nm, every pair repels with a soft 1/r^2 term. */
static System* createSystem(bool constrainFirstBond) {
    System* system = new System();
    HarmonicBondForce* bonds = new HarmonicBondForce();
    CustomNonbondedForce* repulsion = new CustomNonbondedForce("0.05/r^2");
    for (int i = 0; i < N; i++) {
        system->addParticle(12.0);
        repulsion->addParticle();
    }
    for (int i = 0; i < N - 1; i++) {
        if (constrainFirstBond && i == 0)
            system->addConstraint(0, 1, 0.15);
        else
            bonds->addBond(i, i + 1, 0.15, 5e4);
        repulsion->addExclusion(i, i + 1);
    }
    system->addForce(bonds);
    system->addForce(repulsion);
    return system;
}

static std::vector<Vec3> startPositions() {
    std::vector<Vec3> positions;
    for (int i = 0; i < N; i++)
        positions.push_back(Vec3(0.11 * i, 0.04 * std::sin(1.7 * i), 0.03 * std::cos(0.9 * i)));
    return positions;
}

/** Linear generator X = x0 + V z with V the k lowest cosine modes of the chain (orthonormal). */
static ReparamGenerator linearGenerator(const std::vector<Vec3>& x0, int k) {
    std::vector<double> modes(N * k), flat;
    for (int m = 0; m < k; m++) {
        double norm = 0.0;
        for (int i = 0; i < N; i++) {
            modes[i * k + m] = std::cos(M_PI * m * (i + 0.5) / N);
            norm += modes[i * k + m] * modes[i * k + m];
        }
        for (int i = 0; i < N; i++)
            modes[i * k + m] /= std::sqrt(norm);
    }
    for (const Vec3& p : x0)
        for (int j = 0; j < 3; j++)
            flat.push_back(p[j]);
    ReparamGenerator gen("linear");
    gen.setBuffer("modes", modes, N, k);
    gen.setBuffer("x0", flat, N, 3);
    gen.addParameter("z", std::vector<double>(k * 3, 0.0), k, 3);
    return gen;
}

static double energy(Context& context) {
    return context.getState(State::Energy).getPotentialEnergy();
}

/** step() lowers the energy; the step count advances; the best positions are restored exactly. */
static void testIntegratorLowersEnergy() {
    std::unique_ptr<System> system(createSystem(false));
    std::vector<Vec3> x0 = startPositions();
    ReparamIntegrator integrator(linearGenerator(x0, 6), 0.01);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(x0);
    double start = energy(context);
    integrator.step(1);
    REPARAM_ASSERT_CLOSE(integrator.getLastEnergy(), start, 1e-10);  // the first step evaluates the start
    integrator.step(199);
    REPARAM_ASSERT(integrator.getNumStepsTaken() == 200);
    REPARAM_ASSERT(context.getStepCount() == 200);
    REPARAM_ASSERT(integrator.getBestEnergy() < 0.5 * start);
    integrator.applyBestPositions();
    REPARAM_ASSERT_CLOSE(energy(context), integrator.getBestEnergy(), 1e-10);
    REPARAM_ASSERT(context.getState(State::Energy).getKineticEnergy() == 0.0);  // no velocities were set
}

/** Inside a CompoundIntegrator: minimize, then Verlet MD in the same Context conserves energy. */
static void testCompoundIntegrator() {
    std::unique_ptr<System> system(createSystem(false));
    std::vector<Vec3> x0 = startPositions();
    CompoundIntegrator compound;
    ReparamIntegrator* reparam = new ReparamIntegrator(linearGenerator(x0, 6), 0.01);
    compound.addIntegrator(reparam);
    compound.addIntegrator(new VerletIntegrator(0.0005));
    Context context(*system, compound, Platform::getPlatformByName("Reference"));
    context.setPositions(x0);
    double start = energy(context);
    compound.step(100);
    reparam->applyBestPositions();
    double minimized = energy(context);
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

/** The staged run: stage names, counts, history numbering, Context left at the polished minimum. */
static void testStagedRun(bool constrained) {
    std::unique_ptr<System> system(createSystem(constrained));
    std::vector<Vec3> x0 = startPositions();
    VerletIntegrator verlet(0.001);
    Context context(*system, verlet, Platform::getPlatformByName("Reference"));
    context.setPositions(x0);
    context.applyConstraints(1e-8);
    double start = energy(context);
    ReparamGenerator gen = linearGenerator(x0, 4);
    ReparamOptions options;
    options.steps = 60;
    options.fineSteps = 40;
    options.lr = 0.01;
    options.patience = 1000;
    options.finePatience = 1000;
    ReparamRunResult result = runReparamStages(context, &gen, options, 1.0);
    REPARAM_ASSERT(result.getNumStages() == 3);
    REPARAM_ASSERT(result.getStage(0).name == "reparam" && result.getStage(0).iterations == 60);
    REPARAM_ASSERT(result.getStage(1).name == "fine" && result.getStage(1).iterations == 40);
    REPARAM_ASSERT(result.getStage(2).name == "polish");
    REPARAM_ASSERT(result.getHistorySize() == 100 + result.getStage(2).iterations);
    for (int i = 0; i < result.getHistorySize(); i++)
        REPARAM_ASSERT(result.getHistoryIteration(i) == i);
    REPARAM_ASSERT_CLOSE(result.getStage(0).initialEnergy, start, 1e-6);  // constraints reapplied at tolerance 1e-5
    REPARAM_ASSERT(result.getStage(0).finalEnergy < start);
    REPARAM_ASSERT(result.getStage(2).finalEnergy <= result.getStage(1).finalEnergy + 1e-9);
    REPARAM_ASSERT_CLOSE(energy(context), result.getStage(2).finalEnergy, 1e-10);
    REPARAM_ASSERT(gen.getParameterValue(0, 0) != 0.0);  // the generator was trained in place
    if (constrained) {
        State state = context.getState(State::Positions);
        Vec3 d = state.getPositions()[1] - state.getPositions()[0];
        REPARAM_ASSERT_CLOSE(std::sqrt(d.dot(d)), 0.15, 1e-4);
    }
    // The iteration cap applies to all stages together.
    context.setPositions(x0);
    ReparamGenerator fresh = linearGenerator(x0, 4);
    options.maxIterations = 70;
    result = runReparamStages(context, &fresh, options, 1e-6);
    REPARAM_ASSERT(result.getStage(0).iterations == 60 && result.getStage(1).iterations == 10);
    REPARAM_ASSERT(result.getStage(2).iterations == 0);
}

/** XmlSerializer round trip: same settings, same weights (after training), same next steps. */
static void testSerialization() {
    std::unique_ptr<System> system(createSystem(false));
    std::vector<Vec3> x0 = startPositions();
    ReparamIntegrator integrator(linearGenerator(x0, 5), 0.02);
    integrator.setClipNorm(50.0);
    integrator.setIntegrationForceGroups(3);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(x0);
    integrator.step(10);
    std::stringstream buffer;
    XmlSerializer::serialize<Integrator>(&integrator, "Integrator", buffer);
    std::unique_ptr<Integrator> copy(XmlSerializer::deserialize<Integrator>(buffer));
    ReparamIntegrator* restored = dynamic_cast<ReparamIntegrator*>(copy.get());
    REPARAM_ASSERT(restored != NULL);
    REPARAM_ASSERT(restored->getLearningRate() == 0.02 && restored->getClipNorm() == 50.0);
    REPARAM_ASSERT(restored->getIntegrationForceGroups() == 3);
    std::vector<double> a = integrator.getGenerator().computePositions(), b = restored->getGenerator().computePositions();
    REPARAM_ASSERT(a.size() == b.size());
    for (size_t i = 0; i < a.size(); i++)
        REPARAM_ASSERT(a[i] == b[i]);
}

int main() {
    try {
        testIntegratorLowersEnergy();
        testCompoundIntegrator();
        testStagedRun(false);
        testStagedRun(true);
        testSerialization();
    }
    catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
