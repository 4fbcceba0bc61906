#ifndef OPENMM_REPARAM_INTEGRATOR_H_
#define OPENMM_REPARAM_INTEGRATOR_H_

/**
 * ReparamIntegrator: an OpenMM Integrator whose step() is one reparametrized Adam step.
 *
 * It owns a ReparamGenerator (weights, latent, slow modes); step(n) makes n steps (adamStep, AdamDriver.h) over
 * the same AdamStepper and StageStopRules the compiled engine's stages use (generator -> Context forces -> backpropagation -> clipping -> Adam -> best
 * point and collapse guard). Only the step fields of its AdamStageSettings are used (they come from Python:
 * openmm_reparam.engines.integrator); the caller decides how many steps to take. Once a step collapses (a
 * suspect step with a contact closer than collapseDistance) the integrator puts the best positions back into
 * the Context and takes no further steps (getCollapsed()). It works on every platform and inside a
 * CompoundIntegrator; velocities are left alone, time does not advance (step size 0), the step count does.
 */

#include "AdamStageSettings.h"
#include "ReparamGenerator.h"
#include "openmm/Integrator.h"
#include <memory>
#include <string>
#include <vector>

namespace ReparamPlugin {

class AdamStepper;
class StageStopRules;

class ReparamIntegrator : public OpenMM::Integrator {
public:
    /** @param generator the generator to optimize (copied); @param settings its step fields must be valid */
    ReparamIntegrator(const ReparamGenerator& generator, const AdamStageSettings& settings);
    ~ReparamIntegrator();
    /** Perform n reparametrized Adam steps (none once a step has collapsed). */
    void step(int steps);
    const AdamStageSettings& getSettings() const { return settings; }
    /** Potential energy of the last step (NaN before the first). */
    double getLastEnergy() const;
    /** Energy of the best (non-suspect) step so far (+inf before the first). */
    double getBestEnergy() const;
    /** Consecutive steps without improvement (energy < best - relTol*|best|), for early stopping by the caller. */
    int getStepsSinceImprovement() const;
    /** Steps performed since the Context was created. */
    int getNumStepsTaken() const;
    /** True once a step collapsed: the Context then holds the best positions and step() does nothing. */
    bool getCollapsed() const { return collapsed; }
    /** Put the best positions found so far into the Context. */
    void applyBestPositions();
    /** The generator with its current (trained) weights. */
    const ReparamGenerator& getGenerator() const { return *generator; }
protected:
    void initialize(OpenMM::ContextImpl& context);
    void cleanup();
    std::vector<std::string> getKernelNames();
    double computeKineticEnergy();
    bool kineticEnergyRequiresForce() const { return false; }
private:
    std::unique_ptr<ReparamGenerator> generator;
    AdamStageSettings settings;
    std::unique_ptr<AdamStepper> stepper;
    std::unique_ptr<StageStopRules> rules;
    OpenMM::ContextImpl* contextImpl;
    bool collapsed;
};

} // namespace ReparamPlugin

#endif
