#ifndef OPENMM_REPARAM_FIRE_STAGE_SETTINGS_H_
#define OPENMM_REPARAM_FIRE_STAGE_SETTINGS_H_

/**
 * The settings of one FIRE stage: the C++ twin of openmm_reparam.engines.fire.FireStageSettings (same fields,
 * camelCase; Python's deadline arrives as timeLimit, seconds from the stage start).
 *
 * No defaults: every field starts unset (NaN, -1 or "") and the values come from Python; validate() throws an
 * OpenMMException naming the first unset or invalid field. initialDelay is an int (0 or 1) so that it too can
 * be unset (-1).
 */

#include <string>
#include <vector>

namespace ReparamPlugin {

class FireStageSettings {
public:
    FireStageSettings();
    std::string name;        ///< the stage name ("fire")
    int maxSteps;            ///< at most this many iterations (>= 0)
    double dt;               ///< initial time step, ps (> 0; every mass 1 Da: a step from rest moves dt^2 F)
    double dtMax;            ///< largest time step (>= dt)
    double dtMin;            ///< smallest time step after a P <= 0 decrease (>= 0, <= dt)
    int nDelay;              ///< steps with P > 0 before dt may grow (>= 0)
    double fInc;             ///< dt growth factor (>= 1)
    double fDec;             ///< dt shrink factor (in (0, 1))
    double alphaStart;       ///< mixing after a reset (in [0, 1])
    double fAlpha;           ///< alpha shrink factor (in (0, 1])
    int maxUphill;           ///< stop "stuck" after more than this many consecutive P <= 0 steps (>= 0)
    double maxStep;          ///< nm: the largest per-atom displacement of one step (> 0)
    double toleranceFactor;  ///< the stage stops at this x the run's tolerance (> 0)
    int initialDelay;        ///< 1: no dt decrease during the first nDelay steps (FIRE 2.0); 0: off
    double timeLimit;        ///< seconds from the stage start (< 0: none; NaN: unset)
    /** Throw an OpenMMException naming the first unset or invalid field. */
    void validate() const;
    /** The field names, in declaration order (Python checks them against its dataclass). */
    static std::vector<std::string> fieldNames();
};

} // namespace ReparamPlugin

#endif
