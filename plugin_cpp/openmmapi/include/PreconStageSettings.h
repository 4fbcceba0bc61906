#ifndef OPENMM_REPARAM_PRECON_STAGE_SETTINGS_H_
#define OPENMM_REPARAM_PRECON_STAGE_SETTINGS_H_

/**
 * The settings of one preconditioned L-BFGS stage: the C++ twin of
 * openmm_reparam.engines.precon_compiled.PreconIterationSettings (same fields, camelCase; Python's deadline
 * arrives as timeLimit, seconds from the stage start). Only what the iteration needs: the preconditioner's own
 * settings (mu, cutoff, atoms, laplacian) stay in Python, which builds P.
 *
 * No defaults: every field starts unset (NaN, -1 or "") and the values come from Python; validate() throws an
 * OpenMMException naming the first unset or invalid field.
 */

#include <string>
#include <vector>

namespace ReparamPlugin {

class PreconStageSettings {
public:
    PreconStageSettings();
    std::string name;        ///< the stage name ("precon", or "polish" for the projected finish)
    int maxSteps;            ///< at most this many iterations (>= 0)
    int memory;              ///< L-BFGS (s, y) pairs kept (>= 1)
    double rebuildDistance;  ///< nm: stop "rebuild" when a coupled atom moved farther since P was built (> 0, inf ok)
    double maxStep;          ///< nm: the largest atom displacement of a line search's first trial (> 0)
    double toleranceFactor;  ///< the stage stops at this x the run's tolerance (> 0)
    double timeLimit;        ///< seconds from the stage start (< 0: none; NaN: unset)
    /** Throw an OpenMMException naming the first unset or invalid field. */
    void validate() const;
    /** The field names, in declaration order (Python checks them against its dataclass). */
    static std::vector<std::string> fieldNames();
};

} // namespace ReparamPlugin

#endif
