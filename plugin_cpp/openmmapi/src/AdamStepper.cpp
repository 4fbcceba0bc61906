/* AdamStepper and StageTracker: one Adam step and its bookkeeping (see AdamStepper.h). */
#include "AdamStepper.h"
#include "openmm/Integrator.h"
#include <algorithm>
#include <cmath>
#include <limits>

using namespace ReparamPlugin;
using namespace OpenMM;

StageTracker::StageTracker(const AdamStageSettings& settings) : collapseDistance(settings.collapseDistance),
        rules(settings), firstEnergy(std::nan("")) {
}

StepVerdict StageTracker::observe(double energy, double maxForce, const std::vector<Vec3>& positions,
                                  const EnergyBridge& bridge) {
    if (std::isnan(firstEnergy))
        firstEnergy = energy;
    bool suspect = rules.suspect(maxForce);
    if (suspect && bridge.hasCollapsedContact(positions, collapseDistance))
        return StepVerdict::Collapse;
    if (rules.improves(energy, suspect))
        bestPositions = positions;
    return rules.verdict();
}

StepVerdict StageTracker::converged(StepVerdict verdict, double energy, double rmsForce,
                                    const std::vector<Vec3>& positions) {
    bool isBest;
    if (verdict == StepVerdict::Collapse || !rules.converged(energy, rmsForce, isBest))
        return verdict;
    if (isBest)
        bestPositions = positions;
    return StepVerdict::Converged;
}

AdamStepper::AdamStepper(Context& context, ReparamGenerator* generator, const AdamStageSettings& settings) :
        generator(generator), bridge(context, context.getIntegrator().getConstraintTolerance(),
                                     context.getIntegrator().getIntegrationForceGroups(), settings.constraintStiffness),
        clipNorm(settings.clipNorm), lastEnergy(std::nan("")), lastLoss(std::nan("")), stepsTaken(0),
        tracker(settings) {
    settings.validateStep();
    if (generator != NULL) {
        generator->validate();
        if (generator->getNumAtoms() != bridge.getNumParticles())
            throw OpenMMException("the generator and the System have different numbers of atoms");
    }
    else {
        coordinates = bridge.currentPositions().requires_grad_(true);
        coordinateParams.push_back(coordinates);
    }
    adam.reset(new AdamOptimizer(generator != NULL ? generator->parameters() : coordinateParams, settings.lr));
}

StepVerdict AdamStepper::step() {
    std::vector<at::Tensor>& params = generator != NULL ? generator->parameters() : coordinateParams;
    adam->zeroGrad();
    at::Tensor X = generator != NULL ? generator->forward() : coordinates;
    lastLoss = bridge.evaluate(X.detach(), grad, lastEnergy);
    backward(X, grad);
    if (generator != NULL && bridge.getHasConstraints())
        generator->putSolventAt(bridge.getPositions());  // as SoluteGenerator.after_evaluation (no-op without)
    if (generator == NULL && bridge.getHasConstraints()) {
        // Projected gradient descent: the coordinates stay on the constraints (as the Python engine's
        // onto_constraints).
        at::NoGradGuard noGrad;
        const std::vector<Vec3>& evaluated = bridge.getPositions();
        double* c = coordinates.data_ptr<double>();
        for (size_t a = 0; a < evaluated.size(); a++)
            for (int j = 0; j < 3; j++)
                c[3 * a + j] = evaluated[a][j];
    }
    clipGradNorm(params, clipNorm);
    adam->step();
    stepsTaken++;
    StepVerdict verdict = tracker.observe(lastEnergy, bridge.getLastMaxForce(), bridge.getPositions(), bridge);
    return tracker.converged(verdict, lastEnergy, bridge.getLastRmsForce(), bridge.getPositions());
}

void AdamStepper::applyBestPositions() {
    if (tracker.hasBest())
        bridge.setContextPositions(tracker.getBestPositions());
}
