#ifndef OPENMM_REPARAM_PRECON_DRIVER_H_
#define OPENMM_REPARAM_PRECON_DRIVER_H_

/**
 * PreconDriver: the preconditioned L-BFGS loop of PreconStage.h (its stop reasons, the two-loop recursion's
 * order and pair bookkeeping, the line search through ArmijoRule.h, forgetting the pairs, the rebuild test, the
 * recorded energies and times, the reporter call), one copy for the host stage (PreconStage) and the device stage
 * (CommonDevicePreconKernel), over PreconVectorOps, which holds the vectors and does the arithmetic on them:
 * std::vector<double> with numpy's pairwise sums and the Context through EnergyBridge on the host, ComputeArrays
 * and the precon kernels on the device.
 *
 * The vectors: the accepted point x, its gradient g = -F_perp on the movable atoms, the direction d, the trial
 * point and its gradient, and memory + 1 slots of (s, y) pairs; the driver says which slot a pair goes to and
 * keeps the slots of the kept pairs with their rho = 1 / s.y.
 */

#include "PreconStage.h"
#include "PreconStageSettings.h"
#include "StageClock.h"
#include <deque>
#include <string>

namespace ReparamPlugin {

class PreconVectorOps {
public:
    virtual ~PreconVectorOps() {}
    /** Movable particles (what rms(g) averages over). */
    virtual int getNumMovable() const = 0;
    /** Particles whose displacement the rebuild test watches (0: never rebuild). */
    virtual int getNumCoupled() const = 0;
    /** Energy and g at the Context's positions, which become x (false if not finite). */
    virtual bool evaluateStart(double& energy) = 0;
    /** What NonFiniteEnergyException says when evaluateStart() fails. */
    virtual std::string startFailure() const = 0;
    /** g.g at x. */
    virtual double gradientSquared() = 0;
    /** The two loops' vector steps: d = g; */
    virtual void startDirection() = 0;
    /** first loop: a[index] = rho s.d, d -= a[index] y (the pair in slot); */
    virtual void firstLoop(int slot, double rho, int index) = 0;
    /** d = P^-1 d; */
    virtual void applyInversePreconditioner() = 0;
    /** H0's scale gamma: d *= numerator / max(y.P^-1 y, tiny) (y of the pair in slot); */
    virtual void scaleDirection(int slot, double numerator) = 0;
    /** second loop: d += s (a[index] - rho y.d); */
    virtual void secondLoop(int slot, double rho, int index) = 0;
    /** d = -d. */
    virtual void negateDirection() = 0;
    /** The line search's start: slope = g.d and the longest row |d_atom| of d. */
    virtual void searchStart(double& slope, double& longest) = 0;
    /** Energy (and g') at the trial point x + alpha d (constraints applied); false if not finite. */
    virtual bool evaluateTrial(double alpha, double& energy) = 0;
    /** g'.d at the last trial (the slope test of ArmijoRule.h, asked only where Armijo rejected a finite trial
     *  whose energy change is within the noise). */
    virtual double trialSlope() = 0;
    /** The last trial becomes x and g; s = x' - x, y = g' - g go into slot; returns s.y, s.s and y.y. */
    virtual void accept(int slot, double& sy, double& ss, double& yy) = 0;
    /** The rebuild anchor moves to x (P was built there). */
    virtual void setAnchor() = 0;
    /** The farthest a coupled particle has moved from the anchor. */
    virtual double anchorDistance() = 0;
    /** Whether report() is to be called after each recorded step. */
    virtual bool hasReporter() const { return false; }
    /** After a recorded step: true stops the stage ("reporter"); rebuilds is what the reporter is shown. */
    virtual bool report(int iteration, double energy, double rmsForce, int rebuilds) { return false; }
};

/**
 * The iteration's scalars (energy, the kept pairs, evaluations, rebuilds) across run() calls. The constructor
 * evaluates the start (NonFiniteEnergyException if not finite) and sets the anchor; start is when the stage began
 * (its deadline and times count from it); tolerance is the run's (kJ/mol/nm), the stage aims at
 * settings.toleranceFactor x it.
 */
class PreconDriver {
public:
    PreconDriver(PreconVectorOps& ops, const PreconStageSettings& settings, double tolerance,
                 Clock::time_point start);
    /** Iterate at most maxSteps steps (PreconStage::run); stopped: the reporter already asked to stop. */
    PreconStageOutcome run(int maxSteps, bool stopped);
    /** A new P: the memory is forgotten, the anchor moves to x, one more rebuild. */
    void rebuilt();
    double getEnergy() const { return energy; }
private:
    struct Pair {
        int slot;
        double rho;
    };
    double rmsForce();
    void direction();
    bool lineSearch(double& accepted);
    bool step();
    bool needsRebuild();
    PreconVectorOps& ops;
    const PreconStageSettings settings;
    Clock::time_point start;
    std::deque<Pair> pairs;
    double target, energy, initialEnergy;
    int evaluations, rebuilds;
};

} // namespace ReparamPlugin

#endif
