/* PreconDriver: the precon stage's L-BFGS loop and scalar rules over PreconVectorOps (see PreconDriver.h and
 * PreconStage.h). */
#include "PreconDriver.h"
#include "ArmijoRule.h"
#include "NonFiniteEnergyException.h"
#include <cmath>

using namespace ReparamPlugin;

PreconDriver::PreconDriver(PreconVectorOps& ops, const PreconStageSettings& settings, double tolerance,
                           Clock::time_point start) : ops(ops), settings(settings), start(start),
        target(tolerance * settings.toleranceFactor), evaluations(1), rebuilds(0) {
    if (!ops.evaluateStart(energy))
        throw NonFiniteEnergyException(ops.startFailure());
    initialEnergy = energy;
    ops.setAnchor();
}

void PreconDriver::rebuilt() {
    pairs.clear();
    ops.setAnchor();
    rebuilds++;
}

double PreconDriver::rmsForce() {
    int n = ops.getNumMovable();
    return n == 0 ? 0.0 : std::sqrt(ops.gradientSquared() / (double) n);
}

void PreconDriver::direction() {
    int count = (int) pairs.size();
    ops.startDirection();
    for (int p = count - 1; p >= 0; p--)  // newest to oldest
        ops.firstLoop(pairs[p].slot, pairs[p].rho, p);
    ops.applyInversePreconditioner();  // H0 = gamma P^-1, gamma = s.y / y.P^-1 y of the newest pair
    if (count > 0)
        ops.scaleDirection(pairs.back().slot, 1.0 / pairs.back().rho);
    for (int p = 0; p < count; p++)  // oldest to newest
        ops.secondLoop(pairs[p].slot, pairs[p].rho, p);
    ops.negateDirection();
}

bool PreconDriver::lineSearch(double& accepted) {
    double slope, longest;
    ops.searchStart(slope, longest);
    double alpha = armijoFirstStep(slope, longest, settings.maxStep);
    if (alpha == 0)
        return false;
    for (int trial = 1; trial <= MAX_BACKTRACKS; trial++) {
        evaluations++;
        bool finite = ops.evaluateTrial(alpha, accepted);
        double rise = finite ? accepted - energy : 0.0;
        if (trialAccepted(finite, rise, energy, slope, alpha, [this] { return ops.trialSlope(); }))
            return true;
    }
    return false;
}

bool PreconDriver::step() {
    double trialEnergy;
    direction();
    bool found = lineSearch(trialEnergy);
    if (!found && !pairs.empty()) {  // forget the pairs and search again along -P^-1 g
        pairs.clear();
        direction();
        found = lineSearch(trialEnergy);
    }
    if (!found)
        return false;
    int slot = pairs.empty() ? 0 : (pairs.back().slot + 1) % (settings.memory + 1);  // a slot no kept pair uses
    double sy, ss, yy;
    ops.accept(slot, sy, ss, yy);
    if (sy > 1e-12 * std::sqrt(ss * yy) && sy > 0) {
        pairs.push_back(Pair{slot, 1.0 / sy});
        if ((int) pairs.size() > settings.memory)
            pairs.pop_front();
    }
    energy = trialEnergy;
    return true;
}

bool PreconDriver::needsRebuild() {
    return ops.getNumCoupled() > 0 && ops.anchorDistance() > settings.rebuildDistance;
}

PreconStageOutcome PreconDriver::run(int maxSteps, bool stopped) {
    PreconStageOutcome outcome;
    for (int i = 0; i < maxSteps; i++) {
        if (rmsForce() <= target) {
            outcome.stopReason = "converged";
            break;
        }
        const char* reason = stopRequested() ? "interrupted"
                             : stopped       ? "reporter"
                                             : stopBeforeStep(settings.timeLimit, start);
        if (reason != nullptr) {
            outcome.stopReason = reason;
            break;
        }
        if (!step()) {
            outcome.stopReason = "stuck";
            break;
        }
        outcome.energies.push_back(energy);
        outcome.times.push_back(secondsSince(start));
        bool rebuild = needsRebuild();
        if (ops.hasReporter())
            stopped = ops.report((int) outcome.energies.size() - 1, energy, rmsForce(),
                                 rebuilds + (rebuild ? 1 : 0));
        if (rebuild) {
            outcome.stopReason = "rebuild";
            outcome.reporterStopped = stopped;
            break;
        }
        if (stopped) {
            outcome.stopReason = "reporter";
            break;
        }
    }
    if (outcome.stopReason == "max_steps" && rmsForce() <= target)
        outcome.stopReason = "converged";
    outcome.iterations = (int) outcome.energies.size();
    outcome.energyEvaluations = evaluations;
    outcome.wallTime = secondsSince(start);
    outcome.initialEnergy = initialEnergy;
    outcome.finalEnergy = energy;
    outcome.finalRmsForce = rmsForce();
    outcome.rebuilds = rebuilds;
    return outcome;
}
