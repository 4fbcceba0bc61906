/* AdamStepper: the host's Adam stage ops (see AdamStepper.h). */
#include "AdamStepper.h"
#include "openmm/Integrator.h"
#include <cmath>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

AdamStepper::AdamStepper(Context& context, ReparamGenerator* generator, const AdamStageSettings& settings,
                         MinimizationReporter* reporter) :
        generator(generator), reporter(reporter),
        bridge(context, context.getIntegrator().getConstraintTolerance(),
               context.getIntegrator().getIntegrationForceGroups(), settings.constraintStiffness),
        clipNorm(settings.clipNorm), collapseDistance(settings.collapseDistance), lastEnergy(std::nan("")),
        lastLoss(std::nan("")), stepsTaken(0) {
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

AdamEvaluation AdamStepper::evaluate() {
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
    return {lastEnergy, bridge.getLastMaxForce(), bridge.getLastRmsForce()};
}

bool AdamStepper::collapsedContact() {
    return bridge.hasCollapsedContact(bridge.getPositions(), collapseDistance);
}

void AdamStepper::keepBest() {
    bestPositions = bridge.getPositions();
}

void AdamStepper::update(int step) {
    clipGradNorm(generator != NULL ? generator->parameters() : coordinateParams, clipNorm);
    adam->step();
    stepsTaken++;
}

void AdamStepper::finish(bool haveBest) {
    if (haveBest)
        bridge.setContextPositions(bestPositions);
}

bool AdamStepper::report(int iteration, double energy) {
    if (reporter == NULL)
        return false;
    const std::vector<Vec3>& positions = bridge.getPositions();
    const std::vector<Vec3>& forces = bridge.getForces();
    reportX.resize(3 * positions.size());
    reportG.resize(3 * positions.size());
    for (size_t a = 0; a < positions.size(); a++)
        for (int j = 0; j < 3; j++) {
            reportX[3 * a + j] = positions[a][j];
            reportG[3 * a + j] = -forces[a][j];
        }
    std::map<std::string, double> args;
    args["system energy"] = energy;
    return reporter->report(iteration, reportX, reportG, args);
}
