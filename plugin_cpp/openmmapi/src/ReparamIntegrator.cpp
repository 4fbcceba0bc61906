/* ReparamIntegrator: one reparametrized Adam step per integrator step (see ReparamIntegrator.h). */
#include "ReparamIntegrator.h"
#include "AdamOptimizer.h"
#include "EnergyBridge.h"
#include "TorchThreads.h"
#include "openmm/Context.h"
#include "openmm/OpenMMException.h"
#include "openmm/System.h"
#include "openmm/internal/ContextImpl.h"
#include <cmath>
#include <limits>

using namespace ReparamPlugin;
using namespace OpenMM;

ReparamIntegrator::ReparamIntegrator(const ReparamGenerator& gen, double learningRate) :
        generator(new ReparamGenerator(gen)), contextImpl(NULL), learningRate(learningRate), clipNorm(1e3),
        constraintStiffness(1e4), relTol(1e-5), torchThreads(1) {
    generator->validate();
    setStepSize(0.0);
    setConstraintTolerance(1e-5);
    reset();
}

ReparamIntegrator::~ReparamIntegrator() {
}

void ReparamIntegrator::setLearningRate(double lr) {
    learningRate = lr;
    if (adam)
        adam->setLearningRate(lr);
}

void ReparamIntegrator::reset() {
    adam.reset();
    bridge.reset();
    started = false;
    lastLoss = lastEnergy = std::nan("");
    bestLoss = bestEnergy = std::numeric_limits<double>::infinity();
    stepsSinceImprovement = 0;
    stepsTaken = 0;
    bestPositions.clear();
}

void ReparamIntegrator::initialize(ContextImpl& impl) {
    if (generator->getNumAtoms() != impl.getSystem().getNumParticles())
        throw OpenMMException("ReparamIntegrator: the generator and the System have different numbers of atoms");
    contextImpl = &impl;
    reset();
}

void ReparamIntegrator::cleanup() {
    bridge.reset();
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
    if (!started) {
        // The start is the Context's positions at the first step (they fix the massless particles).
        bridge.reset(new EnergyBridge(contextImpl->getOwner(), getConstraintTolerance(), getIntegrationForceGroups(),
                                      constraintStiffness));
        bridge->captureStart();
        adam.reset(new AdamOptimizer(generator->parameters(), learningRate));
        started = true;
    }
    TorchThreadsGuard threads(torchThreads);
    std::vector<at::Tensor>& params = generator->parameters();
    at::Tensor grad;
    for (int i = 0; i < steps; i++) {
        adam->zeroGrad();
        at::Tensor X = generator->forward();
        double energy;
        double loss = bridge->evaluate(X.detach(), grad, energy);
        backward(X, X.device().is_cpu() ? grad : grad.to(X.device()));
        clipGradNorm(params, clipNorm);
        adam->step();
        lastLoss = loss;
        lastEnergy = energy;
        stepsTaken++;
        if (energy < bestEnergy - relTol * std::fabs(bestEnergy) || bestPositions.empty()) {  // as the stages
            bestLoss = loss;
            bestEnergy = energy;
            bestPositions = bridge->getPositions();
            stepsSinceImprovement = 0;
        }
        else
            stepsSinceImprovement++;
        contextImpl->setStepCount(contextImpl->getStepCount() + 1);
    }
}

void ReparamIntegrator::applyBestPositions() {
    if (contextImpl == NULL || !bridge || bestPositions.empty())
        return;
    bridge->setContextPositions(bestPositions);
}
