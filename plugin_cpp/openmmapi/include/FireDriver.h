#ifndef OPENMM_REPARAM_FIRE_DRIVER_H_
#define OPENMM_REPARAM_FIRE_DRIVER_H_

/**
 * runFireDriver: FIRE's loop, its stop rules and the dt/alpha adaptation (FireStage.h's steps 1-7), one copy for
 * the host stage (runFireStage) and the device stage (CommonDeviceFireKernel), over FireVectorOps, which holds
 * the vectors and does the arithmetic on them: std::vector<double> and the Context through EnergyBridge on the
 * host, ComputeArrays and the FIRE kernels on the device.
 *
 * The vectors: F (the force on the movable atoms, projected onto the constraints' tangent space), v, the last
 * step D, the half step back B, the accepted point x and the lowest-energy point.
 */

#include "FireStage.h"
#include "FireStageSettings.h"
#include "StageClock.h"

namespace ReparamPlugin {

class FireVectorOps {
public:
    virtual ~FireVectorOps() {}
    /** Movable particles (what rms(F) averages over). */
    virtual int getNumMovable() const = 0;
    /** Energy and F at the trial point: the Context's positions at the start, the point move() made after.
     *  With constraints v is projected onto the tangent space there (step 6). False if the energy or F is not
     *  finite: then x, E and F stay the accepted ones and reject() follows. */
    virtual bool evaluate(double& energy) = 0;
    /** F.F at the accepted point. */
    virtual double forceSquared() const = 0;
    /** P = F.v. */
    virtual double power() const = 0;
    virtual bool velocityIsZero() const = 0;
    /** Step 2's uphill reset: B = -D/2, v = 0. */
    virtual void resetVelocity() = 0;
    /** Steps 3-4 and the trial point of step 5: v += dt F; v = (1 - alpha) v + alpha |v| F/|F| (skipped if
     *  |F| = 0); D = dt v, scaled so that no atom moves farther than maxStep; trial = (x + B) + D; B = 0. */
    virtual void move(double dt, double alpha, double maxStep) = 0;
    /** Step 5's non-finite branch: back at the accepted point and its F; v = 0, D = 0. */
    virtual void reject() = 0;
    /** Step 6: the evaluated trial point becomes x (D kept). */
    virtual void accept() = 0;
    /** Keep x as the lowest-energy point. */
    virtual void saveBest() = 0;
    /** Leave the Context at x (atLast) or at the lowest-energy point kept. */
    virtual void finish(bool atLast) = 0;
    /** Step 7, after a recorded step: true stops the stage ("reporter"). */
    virtual bool report(int iteration, double energy, double rmsForce) { return false; }
};

/**
 * One FIRE stage from the ops' start (settings complete, validate()d); tolerance is the run's (kJ/mol/nm), the
 * stage aims at settings.toleranceFactor x it; start is when the stage began (its deadline and times count from
 * it). Throws NonFiniteEnergyException if the start has a non-finite energy or force.
 */
FireStageOutcome runFireDriver(FireVectorOps& ops, const FireStageSettings& settings, double tolerance,
                               Clock::time_point start);

} // namespace ReparamPlugin

#endif
