#ifndef OPENMM_REPARAM_ARMIJO_RULE_H_
#define OPENMM_REPARAM_ARMIJO_RULE_H_
/* The precon stage's backtracking line search rule (engines.precon: ARMIJO, MAX_BACKTRACKS, ENERGY_NOISE,
 * CURVATURE, DECREASE), one copy for the host stage (PreconStage.cpp) and the device stage
 * (CommonDevicePreconKernel.cpp). */
#include <algorithm>
#include <cmath>

namespace ReparamPlugin {

const double ARMIJO = 1e-4;     // engines.precon.ARMIJO: the sufficient-decrease factor
const int MAX_BACKTRACKS = 12;  // engines.precon.MAX_BACKTRACKS: trial steps per search
const double ENERGY_NOISE = 1e-4;  // engines.precon.ENERGY_NOISE: energy changes within this x |E| are not measured
const double CURVATURE = 0.9;      // engines.precon.CURVATURE: the slope test's lower bound, x the start's slope
const double DECREASE = 0.1;       // engines.precon.DECREASE: its upper bound is (2 DECREASE - 1) x the start's

/** The first trial step along d, alpha = min(1, maxStep / longest row of d); 0 when d is no descent direction
 *  (slope = g.d not negative, or NaN) or is zero, and there is nothing to search. */
inline double armijoFirstStep(double slope, double longest, double maxStep) {
    if (!(slope < 0) || longest == 0)
        return 0.0;
    return std::min(1.0, maxStep / longest);
}

/** Whether the energy change from E to E + rise is too small to tell a decrease from a rise, so that a trial
 *  Armijo rejected is tested on its slope instead (Hager and Zhang's approximate Wolfe conditions). */
inline bool withinEnergyNoise(double rise, double energy) {
    return std::fabs(rise) <= ENERGY_NOISE * std::fabs(energy);
}

/** The approximate Wolfe slope test: the slope g'.d at the trial lies between CURVATURE and
 *  (2 DECREASE - 1) times the start's slope g.d (negative): the trial is near the minimum along d. */
inline bool slopeAccepts(double trialSlope, double slope) {
    return trialSlope >= CURVATURE * slope && trialSlope <= (2.0 * DECREASE - 1.0) * slope;
}

/** Whether the trial at step alpha, from energy E with slope g.d, is accepted: finite, and either its rise
 *  E(x + alpha d) - E at most ARMIJO alpha slope, or the rise within the energy noise and the trial's slope
 *  (trialSlope(), asked only then: on a device it is a reduction) passing slopeAccepts. Otherwise alpha becomes
 *  the next trial step: a tenth of it after a non-finite energy, the minimum of the quadratic through E, the
 *  slope and the rise, kept within [0.1 alpha, 0.5 alpha]. */
template <class TrialSlope>
inline bool trialAccepted(bool finite, double rise, double energy, double slope, double& alpha,
                          TrialSlope trialSlope) {
    if (!finite) {
        alpha *= 0.1;
        return false;
    }
    if (rise <= ARMIJO * alpha * slope)
        return true;
    if (withinEnergyNoise(rise, energy) && slopeAccepts(trialSlope(), slope))
        return true;
    double interpolated = -slope * alpha * alpha / (2.0 * (rise - slope * alpha));
    alpha = std::min(std::max(interpolated, 0.1 * alpha), 0.5 * alpha);
    return false;
}

} // namespace ReparamPlugin

#endif
