/* ReparamIntegrator: one adamStep per integrator step (see ReparamIntegrator.h). */
#include "ReparamIntegrator.h"
#include "AdamDriver.h"
#include "AdamStepper.h"
#include "StopRequest.h"
#include "TorchThreads.h"
#include "openmm/Context.h"
#include "openmm/OpenMMException.h"
#include "openmm/System.h"
#include "openmm/internal/ContextImpl.h"
#include <cmath>
#include <limits>

using namespace ReparamPlugin;
using namespace OpenMM;

ReparamIntegrator::ReparamIntegrator(const ReparamGenerator& gen, const AdamStageSettings& settings) :
        generator(new ReparamGenerator(gen)), settings(settings), contextImpl(NULL), collapsed(false) {
    generator->validate();
    settings.validateStep();
    setStepSize(0.0);
    setConstraintTolerance(1e-5);
}

ReparamIntegrator::~ReparamIntegrator() {
}

void ReparamIntegrator::initialize(ContextImpl& impl) {
    if (generator->getNumAtoms() != impl.getSystem().getNumParticles())
        throw OpenMMException("ReparamIntegrator: the generator and the System have different numbers of atoms");
    contextImpl = &impl;
    stepper.reset();
    rules.reset();
    collapsed = false;
}

void ReparamIntegrator::cleanup() {
    stepper.reset();
    rules.reset();
    contextImpl = NULL;
}

std::vector<std::string> ReparamIntegrator::getKernelNames() {
    return std::vector<std::string>();  // no kernels of its own: only the Context's force kernels are used
}

double ReparamIntegrator::computeKineticEnergy() {
    if (contextImpl == NULL)
        return 0.0;
    std::vector<Vec3> velocities;
    contextImpl->getVelocities(velocities);
    const System& system = contextImpl->getSystem();
    double energy = 0.0;
    for (int i = 0; i < system.getNumParticles(); i++)
        energy += 0.5 * system.getParticleMass(i) * velocities[i].dot(velocities[i]);
    return energy;
}

void ReparamIntegrator::step(int steps) {
    if (contextImpl == NULL)
        throw OpenMMException("ReparamIntegrator: not bound to a Context");
    if (!stepper) {  // the start is the Context's positions at the first step (they fix the massless particles)
        stepper.reset(new AdamStepper(contextImpl->getOwner(), generator.get(), settings));
        rules.reset(new StageStopRules(settings));
    }
    TorchThreadsGuard threads(settings.torchThreads);
    for (int i = 0; i < steps && !collapsed && !stopRequested(); i++) {
        double energy;
        collapsed = adamStep(*stepper, *rules, stepper->getStepsTaken() + 1, energy) == StepVerdict::Collapse;
        contextImpl->setStepCount(contextImpl->getStepCount() + 1);
        if (collapsed)
            stepper->applyBestPositions();
    }
}

double ReparamIntegrator::getLastEnergy() const {
    return stepper ? stepper->getLastEnergy() : std::nan("");
}

double ReparamIntegrator::getBestEnergy() const {
    return rules ? rules->getBestEnergy() : std::numeric_limits<double>::infinity();
}

int ReparamIntegrator::getStepsSinceImprovement() const {
    return rules ? rules->getStepsSinceImprovement() : 0;
}

int ReparamIntegrator::getNumStepsTaken() const {
    return stepper ? stepper->getStepsTaken() : 0;
}

void ReparamIntegrator::applyBestPositions() {
    if (stepper)
        stepper->applyBestPositions();
}
