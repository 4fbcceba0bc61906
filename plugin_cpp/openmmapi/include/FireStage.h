#ifndef OPENMM_REPARAM_FIRE_STAGE_H_
#define OPENMM_REPARAM_FIRE_STAGE_H_

/**
 * runFireStage: one FIRE stage (FIRE 2.0, unit masses) on the coordinates of any Context, the compiled twin of
 * openmm_reparam.engines.fire.python_fire_stage. The order of operations is the one written in that module's
 * docstring, to the letter (same branches, same floating-point order where it matters):
 *
 *   state: x on the constraints, E, F = F_perp on the movable atoms, v = 0, dt, alpha = alphaStart,
 *          N+ = N- = 0, last step D = 0, half step back B = 0
 *   for i < maxSteps:
 *     1. rms(F) <= toleranceFactor * tolerance: "converged"; time limit passed: "deadline"
 *     2. if v != 0, P = F.v: P > 0: N+++, N- = 0, if N+ > nDelay: dt = min(dt fInc, dtMax), alpha *= fAlpha;
 *        P <= 0: N+ = 0, N-++, N- > maxUphill: "stuck"; unless initialDelay and i < nDelay:
 *        dt = max(dt fDec, dtMin), alpha = alphaStart; v = 0; B = -D/2
 *     3. v += dt F; v = (1 - alpha) v + alpha |v| F/|F|  (skipped if |F| = 0)
 *     4. D = dt v, scaled so that no atom moves farther than maxStep
 *     5. evaluate (x + B) + D (B = 0 after); non-finite: v = 0, D = 0, alpha = alphaStart, dt *= fDec, N+ = 0,
 *        N-++, N- > maxUphill: "stuck"; not recorded; continue
 *     6. accept x', E', F'; with constraints project v onto the tangent space at x' (as the force)
 *     7. record (history; reporter, args {"system energy", "rms force"}, x, -F_perp): true stops ("reporter")
 *   after the loop "converged" if rms(F) <= target. The Context is left at the last point when converged, at
 *   the lowest-energy point evaluated otherwise.
 */

#include "FireStageSettings.h"
#include "openmm/Context.h"
#include "openmm/LocalEnergyMinimizer.h"
#include <string>
#include <vector>

namespace ReparamPlugin {

/** What one FIRE stage did (openmm_reparam.run.result.StageResult) and its per-step history. */
class FireStageOutcome {
public:
    FireStageOutcome();
    int iterations;          ///< recorded steps
    int energyEvaluations;   ///< force evaluations (the start, and one per iteration, non-finite ones included)
    double wallTime;         ///< seconds
    double initialEnergy;    ///< energy at the start
    double finalEnergy;      ///< energy of the point left in the Context
    double finalRmsForce;    ///< rms |F_perp| over the movable atoms at the last point evaluated
    std::string stopReason;  ///< converged, max_steps, deadline, stuck or reporter
    int cpuForceEvaluations; ///< device stages: evaluations whose forces overflowed the device's fixed-point sums,
                             ///< computed again on the CPU platform (CpuForceFallback.h); 0 on the host
    int getHistorySize() const { return (int) energies.size(); }
#ifndef SWIG
    std::vector<double> energies;  ///< energy of each recorded step
    std::vector<double> times;     ///< seconds from the stage start to each recorded step
#endif
};

/**
 * Run one FIRE stage on context's coordinates, from its current positions; tolerance is the run's (kJ/mol/nm),
 * the stage aims at settings.toleranceFactor x it. settings must be complete (validate()). reporter, if given,
 * is called after every recorded step; returning true stops the stage. Throws NonFiniteEnergyException if the
 * starting point has a non-finite energy or force.
 */
FireStageOutcome runFireStage(OpenMM::Context& context, const FireStageSettings& settings, double tolerance,
                              OpenMM::MinimizationReporter* reporter = NULL);

} // namespace ReparamPlugin

#endif
