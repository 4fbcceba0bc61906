#ifndef OPENMM_REPARAM_ADAM_STEPPER_H_
#define OPENMM_REPARAM_ADAM_STEPPER_H_

/**
 * AdamStepper: the host's AdamStageOps (AdamDriver.h), the C++ twin of openmm_reparam.engines.python
 * (PythonEngine's loop body). runAdamStage drives it through runAdamDriver, ReparamIntegrator::step through
 * adamStep.
 *
 * evaluate: X = G(theta) (or the coordinates themselves) -> EnergyBridge loss and gradient -> backpropagate ->
 * (coordinate stage with constraints: the coordinates become the constrained positions just evaluated);
 * update: clip the gradient norm -> Adam update. The best point is the evaluated positions kept by keepBest.
 */

#include "AdamDriver.h"
#include "AdamOptimizer.h"
#include "AdamStageSettings.h"
#include "EnergyBridge.h"
#include "ReparamGenerator.h"
#include "openmm/Context.h"
#include "openmm/LocalEnergyMinimizer.h"
#include "openmm/Vec3.h"
#include <memory>
#include <vector>

namespace ReparamPlugin {

class AdamStepper : public AdamStageOps {
public:
    /**
     * @param context   the Context to evaluate on; its current positions are the start (they fix the rows of
     *                  massless particles and, without a generator, are the coordinates optimized)
     * @param generator the generator whose parameters are optimized in place, or NULL for the coordinates
     * @param settings  the step fields must be valid (validateStep)
     * @param reporter  called after every recorded step (runAdamStage's), or NULL
     */
    AdamStepper(OpenMM::Context& context, ReparamGenerator* generator, const AdamStageSettings& settings,
                OpenMM::MinimizationReporter* reporter = NULL);
    AdamEvaluation evaluate() override;
    bool collapsedContact() override;
    void keepBest() override;
    void update(int step) override;
    /** Put the best positions into the Context (nothing without haveBest). */
    void finish(bool haveBest) override;
    /** The reporter's call: flattened positions, minus the raw forces, args {"system energy": E}. */
    bool report(int iteration, double energy) override;
    int getStepsTaken() const { return stepsTaken; }
    double getLastEnergy() const { return lastEnergy; }
    double getLastLoss() const { return lastLoss; }
    /** Positions (constraints applied) and raw forces of the last evaluation. */
    const std::vector<OpenMM::Vec3>& getLastPositions() const { return bridge.getPositions(); }
    const std::vector<OpenMM::Vec3>& getLastForces() const { return bridge.getForces(); }
    /** Put the best positions into the Context (nothing if no step was acceptable yet). */
    void applyBestPositions() { finish(!bestPositions.empty()); }
private:
    ReparamGenerator* generator;
    OpenMM::MinimizationReporter* reporter;
    EnergyBridge bridge;
    at::Tensor coordinates, grad;
    std::vector<at::Tensor> coordinateParams;
    std::unique_ptr<AdamOptimizer> adam;
    double clipNorm, collapseDistance, lastEnergy, lastLoss;
    int stepsTaken;
    std::vector<OpenMM::Vec3> bestPositions;
    std::vector<double> reportX, reportG;
};

} // namespace ReparamPlugin

#endif
