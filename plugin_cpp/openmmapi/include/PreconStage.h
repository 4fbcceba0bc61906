#ifndef OPENMM_REPARAM_PRECON_STAGE_H_
#define OPENMM_REPARAM_PRECON_STAGE_H_

/**
 * PreconStage: the preconditioned L-BFGS iteration of method precon (and of the polish's projected finish,
 * P = mu I), the compiled twin of openmm_reparam.engines.precon (PreconLBFGS.step, LBFGSMemory, line_search,
 * precon_stage), to the letter: same branches, same floating-point order (sums over the n x 3 movable
 * coordinates are numpy's pairwise sums), so the two differ only by the rounding of P's solve and of the
 * constraint projection.
 *
 *   state: x on the constraints, E, g = -F_perp on the movable atoms, memory of (s, y, rho = 1/s.y)
 *   for i < maxSteps:
 *     1. rms(g) <= toleranceFactor * tolerance: "converged"; stopped or time limit passed: "reporter"/"deadline"
 *     2. d = -H g (two loops, H0 = gamma P^-1, gamma = s.y / y.P^-1 y of the newest pair, 1 without pairs);
 *        line search along d (below); nothing found and pairs kept: forget them, search again; nothing: "stuck"
 *     3. keep (s, y) if s.y > 1e-12 |s||y| and s.y > 0 (at most `memory` pairs); accept x', E', g'
 *     4. record (history; reporter args {"system energy", "rms force", "rebuilds"}, x, -F_perp on all)
 *     5. a coupled atom moved farther than rebuildDistance since P was built: return "rebuild" (the caller
 *        builds P at x, setPreconditioner(), and calls run() again; the recorded "rebuilds" already counts it)
 *     6. the reporter asked to stop: "reporter"
 *   after the loop "converged" if rms(g) <= target.
 *   line search: slope = g.d, longest = max_atom |d_atom|; stop unless slope < 0 and longest > 0;
 *     alpha = min(1, maxStep / longest); up to 12 trials at x + alpha d: non-finite -> alpha *= 0.1;
 *     E' - E <= 1e-4 alpha slope -> accept; else alpha = min(max(quadratic minimizer, 0.1 alpha), 0.5 alpha).
 * Python's rebuild sits between steps 3 and 4; the state (x, E, g) lives here across run() calls, so the
 * rebuild costs no evaluation here, as in Python.
 */

#include "ConstraintProjector.h"
#include "EnergyBridge.h"
#include "PreconMatrix.h"
#include "PreconStageSettings.h"
#include "openmm/Context.h"
#include "openmm/LocalEnergyMinimizer.h"
#include <memory>
#include <string>
#include <vector>

namespace ReparamPlugin {

/** What one run() call did; energyEvaluations, wallTime and rebuilds count since the stage was created. */
class PreconStageOutcome {
public:
    PreconStageOutcome();
    int iterations;          ///< steps recorded in this call
    int energyEvaluations;   ///< evaluations of this stage so far (the start, then every line-search trial)
    double wallTime;         ///< seconds since the stage was created
    double initialEnergy;    ///< energy at the stage start
    double finalEnergy;      ///< energy of the current iterate
    double finalRmsForce;    ///< rms |F_perp| of the current iterate
    int rebuilds;            ///< setPreconditioner() calls so far
    bool reporterStopped;    ///< with "rebuild": the reporter also asked to stop (after the rebuild)
    std::string stopReason;  ///< converged, max_steps, deadline, stuck, reporter or rebuild
    int cpuForceEvaluations; ///< device stages: evaluations whose forces overflowed the device's fixed-point sums,
                             ///< computed again on the CPU platform (CpuForceFallback.h); 0 on the host
    int getHistorySize() const { return (int) energies.size(); }
#ifndef SWIG
    std::vector<double> energies;  ///< energy of each recorded step
    std::vector<double> times;     ///< seconds from the stage start to each recorded step
#endif
};

class HostPreconOps;
class PreconDriver;

/** The host stage: PreconDriver over HostPreconOps (std::vector<double>, numpy's pairwise sums, the Context
 *  through EnergyBridge). */
class PreconStage {
public:
    /**
     * Evaluate the Context's positions (the start; NonFiniteEnergyException if not finite). tolerance is the
     * run's (kJ/mol/nm); coupled: the particle indices P's Laplacian couples (rebuild test; empty: never).
     */
    PreconStage(OpenMM::Context& context, const PreconStageSettings& settings, const PreconMatrix& precon,
                const std::vector<int>& coupled, double tolerance);
    ~PreconStage();
    /** Iterate at most maxSteps steps; stopped: the run was already stopped by its reporter. */
    PreconStageOutcome run(int maxSteps, bool stopped, OpenMM::MinimizationReporter* reporter);
    /** A new P (built at the current iterate): the memory is forgotten, the rebuild anchor moves to x. */
    void setPreconditioner(const PreconMatrix& precon);
    /** Put the current iterate into the Context. */
    void leaveContext();
    /** The current iterate x, all particles (3N values). */
    std::vector<double> getPositions() const;
    double getEnergy() const;
private:
    PreconStage(const PreconStage&) = delete;
    PreconStage& operator=(const PreconStage&) = delete;
    std::unique_ptr<HostPreconOps> ops;
    std::unique_ptr<PreconDriver> driver;
};

/** One stage without rebuilds in between: create, run(settings.maxSteps), leave the iterate in the Context. */
PreconStageOutcome runPreconStage(OpenMM::Context& context, const PreconStageSettings& settings,
                                  const PreconMatrix& precon, const std::vector<int>& coupled, double tolerance,
                                  OpenMM::MinimizationReporter* reporter = NULL);

} // namespace ReparamPlugin

#endif
