#ifndef OPENMM_REPARAM_STAGE_STOP_RULES_H_
#define OPENMM_REPARAM_STAGE_STOP_RULES_H_

/**
 * StageStopRules: the stop rules of an Adam stage on its energies and largest forces alone (StageTracker in
 * engines/python.py), one copy for the host stage (StageTracker in AdamStepper.h, which adds the best positions
 * and the collapse check on them) and the device stage (which keeps the best positions on the device).
 *
 * Per step, in this order: suspect(maxForce) (a spike above spikeFactor x the calmest max-force so far); the
 * caller's collapse check on suspect steps; improves(energy, suspect); converged(energy, rmsForce); verdict().
 */

#include "AdamStageSettings.h"
#include <vector>

namespace ReparamPlugin {

/** What a step says about the stage: go on, or the rule that ends it. */
enum class StepVerdict { Continue, Collapse, Stalled, Patience, Converged };

/** "collapse", "stalled", "patience", "converged" ("" for Continue): the stop reasons of openmm_reparam's
 * StageResult. */
const char* verdictName(StepVerdict verdict);

class StageStopRules {
public:
    explicit StageStopRules(const AdamStageSettings& settings);
    /** Whether maxForce is a spike: above spikeFactor x the calmest max-force so far (this one included). */
    bool suspect(double maxForce);
    /** Counts the step: a non-suspect energy below best - relTol |best| becomes the best (true), otherwise the
     *  patience counter grows; the lowest non-suspect energy so far feeds the progress rule. */
    bool improves(double energy, bool isSuspect);
    /** The force-tolerance stop: with forceTolerance > 0 and rmsForce at most it, true; the energy then becomes
     *  the best unless a lower one was seen (isBest says whether it did). */
    bool converged(double energy, double rmsForce, bool& isBest);
    /** Stalled (the drop over the last progressWindow steps below progressFraction x the largest such drop),
     *  Patience (patience steps without a new best), or Continue. */
    StepVerdict verdict();
    bool hasBest() const { return haveBest; }
    double getBestEnergy() const { return bestEnergy; }
    int getStepsSinceImprovement() const { return waited; }
private:
    const AdamStageSettings settings;
    bool haveBest;
    double bestEnergy, calmest, largestDrop;
    int waited;
    std::vector<double> lowest;  // the lowest non-suspect energy after each step
};

} // namespace ReparamPlugin

#endif
