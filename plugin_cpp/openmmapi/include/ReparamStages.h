#ifndef OPENMM_REPARAM_STAGES_H_
#define OPENMM_REPARAM_STAGES_H_

/**
 * The staged minimization run, callable from C++ on any Context:
 *   "reparam": Adam on the generator parameters (early stopping), Context left at the best positions;
 *   "fine":    Adam on the coordinates themselves (same loop, params = [X]);
 *   "polish":  OpenMM's L-BFGS (LocalEnergyMinimizer).
 * Returns per-stage statistics and the energy history, like openmm_reparam/stages.py.
 */

#include "ReparamGenerator.h"
#include "openmm/Context.h"
#include "openmm/LocalEnergyMinimizer.h"
#include <string>
#include <vector>

namespace ReparamPlugin {

/** Options of the staged run (defaults mirror openmm_reparam/options.py). */
class ReparamOptions {
public:
    ReparamOptions() : steps(1000), fineSteps(1000), patience(50), finePatience(50), lr(1e-3), fineLr(1e-3),
        clipNorm(1e3), relTol(1e-5), constraintStiffness(1e4), polish(true), timeBudget(-1.0), reparamShare(0.7),
        timeOffset(0.0), maxIterations(0), iterationOffset(0), torchThreads(1), collapseDistance(0.07),
        spikeFactor(3.0), polishRounds(3), fineStageName("fine") {
    }
    int steps;                  ///< reparam stage maximum steps (0 skips the stage)
    int fineSteps;              ///< fine stage maximum steps (0 skips the stage)
    int patience;               ///< reparam early stopping: consecutive non-improving steps
    int finePatience;           ///< fine early stopping
    double lr;                  ///< Adam learning rate of the reparam stage
    double fineLr;              ///< Adam learning rate of the fine stage (nm)
    double clipNorm;            ///< gradient clipping (total 2-norm)
    double relTol;              ///< a step improves if loss < best - relTol*|best|
    double constraintStiffness; ///< k_c, kJ/mol/nm^2
    bool polish;                ///< finish with L-BFGS
    double timeBudget;          ///< seconds for the reparam + fine stages (negative = no limit), from their start
    double reparamShare;        ///< share of the time budget the reparam stage may use
    double timeOffset;          ///< seconds already spent in the run before the stages (history times add it)
    int maxIterations;          ///< cap on the iterations of the whole run, all stages (0 = no cap)
    int iterationOffset;        ///< iterations already spent in the run (the reporter's iteration numbers go on)
    int torchThreads;           ///< libtorch intra-op threads during the run (<= 0: unchanged); see TorchThreads.h
    double collapseDistance;    ///< nm: a suspect step with two atoms this close ends the stage (collapse guard)
    double spikeFactor;         ///< a step is suspect if its largest atomic force exceeds this x the smallest seen
    int polishRounds;           ///< L-BFGS restarts at most while the forces are above the tolerance
    std::string fineStageName;  ///< name of the coordinate stage ("fine", or "adam" for the coordinate-only method)
};

/** Statistics of one stage (as openmm_reparam.result.StageResult). */
class ReparamStageStats {
public:
    std::string name;
    int iterations;
    int energyEvaluations;
    double wallTime;
    double initialEnergy;
    double finalEnergy;
    bool collapsed;             ///< the collapse guard stopped the stage
};

/** Outcome of a staged run. Per-element accessors keep the Python wrapper simple. */
class ReparamRunResult {
public:
    int getNumStages() const { return (int) stages.size(); }
    /** True if the reporter asked to stop. */
    bool getStopped() const { return stopped; }
    const ReparamStageStats& getStage(int index) const;
    int getHistorySize() const { return (int) historyEnergy.size(); }
    /** Index into stages of history point i. */
    int getHistoryStage(int i) const { return historyStage[i]; }
    int getHistoryIteration(int i) const { return historyIteration[i]; }
    double getHistoryTime(int i) const { return historyTime[i]; }
    double getHistoryEnergy(int i) const { return historyEnergy[i]; }
    /** Energies of the whole history as one vector (C++ convenience). */
    const std::vector<double>& getHistoryEnergies() const { return historyEnergy; }
#ifndef SWIG
    ReparamRunResult() : stopped(false) {
    }
    bool stopped;
    std::vector<ReparamStageStats> stages;
    std::vector<int> historyStage, historyIteration;
    std::vector<double> historyTime, historyEnergy;
#endif
};

/**
 * Run the stages on context. generator may be NULL (skips the reparam stage); it is updated in place
 * (its parameters hold the trained weights afterwards). tolerance (kJ/mol/nm) is the L-BFGS tolerance.
 * reporter, if given, is called every iteration of every stage; args hold "system energy" and
 * "stage_index" (index into the result's stages); returning true stops the run.
 * Throws OpenMMException if the force field returns a non-finite energy or forces.
 */
ReparamRunResult runReparamStages(OpenMM::Context& context, ReparamGenerator* generator, const ReparamOptions& options,
                                  double tolerance, OpenMM::MinimizationReporter* reporter = NULL);

} // namespace ReparamPlugin

#endif
