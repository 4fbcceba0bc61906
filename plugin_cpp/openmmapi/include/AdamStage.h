#ifndef OPENMM_REPARAM_ADAM_STAGE_H_
#define OPENMM_REPARAM_ADAM_STAGE_H_

/**
 * runAdamStage: one Adam stage on any Context, the compiled engine's whole job (the orchestrator in
 * openmm_reparam's methods and minimizer own the run; the contract is openmm_reparam/engines/settings.py).
 *
 * The loop (stop rules, best point, record, reporter) is runAdamDriver's (AdamDriver.h), over the host ops
 * (AdamStepper.h); the Context is left at the best positions.
 */

#include "AdamStageSettings.h"
#include "ReparamGenerator.h"
#include "openmm/Context.h"
#include "openmm/LocalEnergyMinimizer.h"
#include <string>
#include <vector>

namespace ReparamPlugin {

/** What one stage did (openmm_reparam.run.result.StageResult) and its per-step history. */
class AdamStageOutcome {
public:
    AdamStageOutcome();
    int iterations;          ///< steps taken (a collapsing step included)
    int energyEvaluations;   ///< force evaluations (one per step)
    double wallTime;         ///< seconds
    double initialEnergy;    ///< energy of the first step (NaN if none)
    double bestEnergy;       ///< energy of the best (non-suspect) step, where the Context is left (NaN if none)
    bool collapsed;          ///< the collapse guard ended the stage
    std::string stopReason;  ///< max_steps, patience, stalled, deadline, collapse or reporter
    int cpuForceEvaluations; ///< device stages: evaluations whose forces overflowed the device's fixed-point sums,
                             ///< computed again on the CPU platform (CpuForceFallback.h); 0 on the host
    int getHistorySize() const { return (int) energies.size(); }
#ifndef SWIG
    std::vector<double> energies;  ///< energy of each recorded step
    std::vector<double> times;     ///< seconds from the stage start to each recorded step
#endif
};

/**
 * Run one Adam stage on context: on generator's parameters (trained in place), or on the coordinates starting
 * at the Context's positions when generator is NULL. settings must be complete (validate()). reporter, if
 * given, is called after every recorded step with args {"system energy": E}, the evaluated positions and
 * minus the raw forces; returning true stops the stage. libtorch uses settings.torchThreads threads meanwhile.
 * Throws NonFiniteEnergyException if the force field returns a non-finite energy or force.
 */
AdamStageOutcome runAdamStage(OpenMM::Context& context, ReparamGenerator* generator, const AdamStageSettings& settings,
                              OpenMM::MinimizationReporter* reporter = NULL);

} // namespace ReparamPlugin

#endif
