#ifndef OPENMM_REPARAM_ADAM_STAGE_SETTINGS_H_
#define OPENMM_REPARAM_ADAM_STAGE_SETTINGS_H_

/**
 * The settings of one Adam stage: the C++ twin of openmm_reparam.engines.settings.AdamStageSettings.
 *
 * There are no defaults here: every field starts unset (NaN, -1 or "") and the values always come from Python
 * (each method's options in openmm_reparam/methods hold the defaults). validate() rejects unset or invalid fields.
 * The *step* fields configure each Adam step and its bookkeeping (AdamStepper, ReparamIntegrator); the *stage*
 * fields only say when a stage stops (runAdamStage).
 */

#include <string>
#include <vector>

namespace ReparamPlugin {

class AdamStageSettings {
public:
    AdamStageSettings();
    // -- step fields ------------------------------------------------------------------------------------------
    double lr;                  ///< Adam learning rate (> 0)
    double clipNorm;            ///< the gradient's total 2-norm is clipped to this (> 0)
    double relTol;              ///< a step improves if energy < best - relTol * |best| (>= 0)
    double collapseDistance;    ///< nm: a suspect step with two movable atoms this close collapses (<= 0: off)
    double spikeFactor;         ///< a step is suspect if its largest atomic force is above this x the calmest (> 0)
    double constraintStiffness; ///< kJ/mol/nm^2, spring pulling the generator output onto the constraints (>= 0)
    int torchThreads;           ///< libtorch intra-op threads while stepping (>= 1), see TorchThreads.h
    // -- stage fields -----------------------------------------------------------------------------------------
    std::string name;           ///< the stage name ("reparam", "fine", "adam"), for messages
    int maxSteps;               ///< at most this many steps (>= 0)
    int patience;               ///< stop after this many steps without improvement (>= 0)
    int progressWindow;         ///< steps; 0 turns the progress rule off (>= 0)
    double progressFraction;    ///< stop when the last window's drop < this x the largest window drop ([0, 1])
    double forceTolerance;      ///< kJ/mol/nm: stop ("converged") once the RMS projected force is at most this (>= 0; 0: off)
    double timeLimit;           ///< seconds from the stage start (< 0: none; NaN: unset)
    /** Throw an OpenMMException naming the first unset or invalid step field. */
    void validateStep() const;
    /** Throw an OpenMMException naming the first unset or invalid field. */
    void validate() const;
    /** The field names, in declaration order (Python checks them against its dataclass). */
    static std::vector<std::string> fieldNames();
};

} // namespace ReparamPlugin

#endif
