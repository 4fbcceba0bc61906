#ifndef OPENMM_REPARAM_ADAM_STEPPER_H_
#define OPENMM_REPARAM_ADAM_STEPPER_H_

/**
 * AdamStepper: one Adam step of a stage and its bookkeeping, the C++ twin of openmm_reparam.engines.python
 * (PythonEngine's loop body + StageTracker). Both runAdamStage and ReparamIntegrator::step use it.
 *
 * A step: X = G(theta) (or the coordinates themselves) -> EnergyBridge loss and gradient -> backpropagate ->
 * (coordinate stage with constraints: the coordinates become the constrained positions just evaluated) ->
 * clip the gradient norm -> Adam update -> StageTracker::observe.
 */

#include "AdamOptimizer.h"
#include "AdamStageSettings.h"
#include "EnergyBridge.h"
#include "ReparamGenerator.h"
#include "StageStopRules.h"
#include "openmm/Context.h"
#include "openmm/Vec3.h"
#include <memory>
#include <vector>

namespace ReparamPlugin {

/**
 * Best point, early stopping and collapse guard of one stage (StageTracker in engines/python.py, same order of
 * checks): StageStopRules, plus the best positions and the collapse check on a suspect step (a contact closer
 * than collapseDistance is a collapse, checked before the step counts).
 */
class StageTracker {
public:
    explicit StageTracker(const AdamStageSettings& settings);
    StepVerdict observe(double energy, double maxForce, const std::vector<OpenMM::Vec3>& positions,
                        const EnergyBridge& bridge);
    /** After observe: with forceTolerance > 0 and the step's RMS projected force at most it, the step (if no
     * higher than the best) becomes the best and the verdict is Converged; otherwise ``verdict`` unchanged. */
    StepVerdict converged(StepVerdict verdict, double energy, double rmsForce,
                          const std::vector<OpenMM::Vec3>& positions);
    bool hasBest() const { return rules.hasBest(); }
    double getBestEnergy() const { return rules.getBestEnergy(); }
    const std::vector<OpenMM::Vec3>& getBestPositions() const { return bestPositions; }
    /** Energy of the first observed step (NaN before it). */
    double getFirstEnergy() const { return firstEnergy; }
    int getStepsSinceImprovement() const { return rules.getStepsSinceImprovement(); }
private:
    const double collapseDistance;
    StageStopRules rules;
    double firstEnergy;
    std::vector<OpenMM::Vec3> bestPositions;
};

class AdamStepper {
public:
    /**
     * @param context   the Context to evaluate on; its current positions are the start (they fix the rows of
     *                  massless particles and, without a generator, are the coordinates optimized)
     * @param generator the generator whose parameters are optimized in place, or NULL for the coordinates
     * @param settings  the step fields must be valid (validateStep)
     */
    AdamStepper(OpenMM::Context& context, ReparamGenerator* generator, const AdamStageSettings& settings);
    /** One step; throws NonFiniteEnergyException on a non-finite energy or force. */
    StepVerdict step();
    int getStepsTaken() const { return stepsTaken; }
    double getLastEnergy() const { return lastEnergy; }
    double getLastLoss() const { return lastLoss; }
    /** Positions (constraints applied) and raw forces of the last evaluation. */
    const std::vector<OpenMM::Vec3>& getLastPositions() const { return bridge.getPositions(); }
    const std::vector<OpenMM::Vec3>& getLastForces() const { return bridge.getForces(); }
    const StageTracker& getTracker() const { return tracker; }
    /** Put the best positions into the Context (nothing if no step was acceptable yet). */
    void applyBestPositions();
private:
    ReparamGenerator* generator;
    EnergyBridge bridge;
    at::Tensor coordinates, grad;
    std::vector<at::Tensor> coordinateParams;
    std::unique_ptr<AdamOptimizer> adam;
    double clipNorm, lastEnergy, lastLoss;
    int stepsTaken;
    StageTracker tracker;
};

} // namespace ReparamPlugin

#endif
