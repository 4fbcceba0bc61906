/* AdamStepper and StageTracker: one Adam step and its bookkeeping (see AdamStepper.h). */
#include "AdamStepper.h"
#include "openmm/Integrator.h"
#include <algorithm>
#include <cmath>
#include <limits>

using namespace ReparamPlugin;
using namespace OpenMM;

const char* ReparamPlugin::verdictName(StepVerdict verdict) {
    switch (verdict) {
        case StepVerdict::Collapse: return "collapse";
        case StepVerdict::Stalled: return "stalled";
        case StepVerdict::Patience: return "patience";
        case StepVerdict::Converged: return "converged";
        default: return "";
    }
}

StageTracker::StageTracker(const AdamStageSettings& settings) : settings(settings), haveBest(false),
        bestEnergy(std::numeric_limits<double>::infinity()), firstEnergy(std::nan("")),
        calmest(std::numeric_limits<double>::infinity()), largestDrop(0.0), waited(0) {
}

StepVerdict StageTracker::observe(double energy, double maxForce, const std::vector<Vec3>& positions,
                                  const EnergyBridge& bridge) {
    if (std::isnan(firstEnergy))
        firstEnergy = energy;
    calmest = std::min(calmest, maxForce);
    bool suspect = maxForce > settings.spikeFactor * calmest;
    if (suspect && bridge.hasCollapsedContact(positions, settings.collapseDistance))
        return StepVerdict::Collapse;
    if (!suspect && (!haveBest || energy < bestEnergy - settings.relTol * std::fabs(bestEnergy))) {
        bestEnergy = energy;
        bestPositions = positions;
        haveBest = true;
        waited = 0;
    }
    else
        waited++;
    double previous = lowest.empty() ? std::numeric_limits<double>::infinity() : lowest.back();
    lowest.push_back(suspect ? previous : std::min(previous, energy));
    if (stalled())
        return StepVerdict::Stalled;
    return waited >= settings.patience ? StepVerdict::Patience : StepVerdict::Continue;
}

StepVerdict StageTracker::converged(StepVerdict verdict, double energy, double rmsForce,
                                    const std::vector<Vec3>& positions) {
    if (verdict == StepVerdict::Collapse || !(settings.forceTolerance > 0) || rmsForce > settings.forceTolerance)
        return verdict;
    if (!haveBest || energy <= bestEnergy) {
        bestEnergy = energy;
        bestPositions = positions;
        haveBest = true;
    }
    return StepVerdict::Converged;
}

bool StageTracker::stalled() {
    int window = settings.progressWindow;
    if (window <= 0 || (int) lowest.size() <= window)
        return false;
    double before = lowest[lowest.size() - window - 1];
    if (!std::isfinite(before))
        return false;
    double drop = before - lowest.back();
    largestDrop = std::max(largestDrop, drop);
    return drop < settings.progressFraction * largestDrop;
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
