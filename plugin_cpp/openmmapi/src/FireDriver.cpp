/* runFireDriver: FIRE 2.0's loop and scalar rules over FireVectorOps (see FireDriver.h and FireStage.h). */
#include "FireDriver.h"
#include "NonFiniteEnergyException.h"
#include "StageClock.h"
#include <algorithm>
#include <cmath>

using namespace ReparamPlugin;

namespace {

/** The scalars of the iteration (Python: engines.fire.FireState) and the steps that change them. */
class FireScalars {
public:
    FireScalars(FireVectorOps& ops, const FireStageSettings& settings) : ops(ops), s(settings), dt(settings.dt),
            alpha(settings.alphaStart), nPositive(0), nNegative(0), evaluations(1) {
        if (!ops.evaluate(energy))
            throw NonFiniteEnergyException("runFireStage: the starting point has a non-finite energy or forces");
        bestEnergy = energy;
        ops.saveBest();
    }
    double rmsForce() const {
        int m = ops.getNumMovable();
        return m == 0 ? 0.0 : std::sqrt(ops.forceSquared() / m);
    }
    /** Step 2; false when stuck. */
    bool adapt(int iteration) {
        if (ops.velocityIsZero())
            return true;
        if (ops.power() > 0) {
            nPositive++;
            nNegative = 0;
            if (nPositive > s.nDelay) {
                dt = std::min(dt * s.fInc, s.dtMax);
                alpha = alpha * s.fAlpha;
            }
            return true;
        }
        nPositive = 0;
        nNegative++;
        if (nNegative > s.maxUphill)
            return false;
        if (!(s.initialDelay == 1 && iteration < s.nDelay)) {
            dt = std::max(dt * s.fDec, s.dtMin);
            alpha = s.alphaStart;
        }
        ops.resetVelocity();
        return true;
    }
    /** Steps 3-6; false (state reset) on a non-finite energy. */
    bool advance() {
        ops.move(dt, alpha, s.maxStep);
        evaluations++;
        double trial;
        if (!ops.evaluate(trial)) {
            ops.reject();
            alpha = s.alphaStart;
            dt = dt * s.fDec;
            nPositive = 0;
            nNegative++;
            return false;
        }
        ops.accept();
        energy = trial;
        if (energy < bestEnergy) {
            bestEnergy = energy;
            ops.saveBest();
        }
        return true;
    }
    FireVectorOps& ops;
    const FireStageSettings& s;
    double energy, bestEnergy, dt, alpha;
    int nPositive, nNegative, evaluations;
};

} // namespace

FireStageOutcome ReparamPlugin::runFireDriver(FireVectorOps& ops, const FireStageSettings& settings,
                                              double tolerance, Clock::time_point start) {
    double target = tolerance * settings.toleranceFactor;
    FireScalars state(ops, settings);
    FireStageOutcome outcome;
    outcome.initialEnergy = state.energy;
    for (int i = 0; i < settings.maxSteps; i++) {
        if (state.rmsForce() <= target) {
            outcome.stopReason = "converged";
            break;
        }
        if (const char* reason = stopBeforeStep(settings.timeLimit, start)) {
            outcome.stopReason = reason;
            break;
        }
        if (!state.adapt(i)) {
            outcome.stopReason = "stuck";
            break;
        }
        if (!state.advance()) {
            if (state.nNegative > settings.maxUphill) {
                outcome.stopReason = "stuck";
                break;
            }
            continue;
        }
        outcome.energies.push_back(state.energy);
        outcome.times.push_back(secondsSince(start));
        if (ops.report((int) outcome.energies.size() - 1, state.energy, state.rmsForce())) {
            outcome.stopReason = "reporter";
            break;
        }
    }
    if (outcome.stopReason == "max_steps" && state.rmsForce() <= target)
        outcome.stopReason = "converged";
    bool converged = outcome.stopReason == "converged";
    outcome.finalRmsForce = state.rmsForce();
    ops.finish(converged);
    outcome.finalEnergy = converged ? state.energy : state.bestEnergy;
    outcome.iterations = (int) outcome.energies.size();
    outcome.energyEvaluations = state.evaluations;
    outcome.wallTime = secondsSince(start);
    return outcome;
}
