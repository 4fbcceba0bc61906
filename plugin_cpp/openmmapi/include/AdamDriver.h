#ifndef OPENMM_REPARAM_ADAM_DRIVER_H_
#define OPENMM_REPARAM_ADAM_DRIVER_H_

/**
 * runAdamDriver: an Adam stage's loop, its stop rules and its record, one copy for the host stage (runAdamStage:
 * AdamStepper's tensors and EnergyBridge) and the device stages (CommonDeviceAdamKernel: ComputeArrays and the
 * Adam kernels, with or without a generator), over AdamStageOps, which evaluates, keeps the best point and
 * updates. adamStep is one step of it, which ReparamIntegrator also takes.
 *
 *   for step < maxSteps:  stop when interrupted or at the time limit ("interrupted", "deadline");
 *                         adamStep: evaluate; a spike in the largest force is suspect, and a suspect step with a
 *                         collapsed contact ends the stage after its update, unrecorded ("collapse"); otherwise
 *                         StageStopRules' best point (kept by the ops) and convergence; the Adam update;
 *                         record the step (history; report, which may stop it: "reporter");
 *                         then "converged", "stalled" or "patience"
 *   ("max_steps" if none of these), and the ops leave the Context at the best point.
 */

#include "AdamStage.h"
#include "AdamStageSettings.h"
#include "StageClock.h"
#include "StageStopRules.h"

namespace ReparamPlugin {

/** What one evaluation measured: the energy (kJ/mol), the largest atomic raw force and the RMS force projected
 *  onto the constraints over the movable particles (kJ/mol/nm). */
struct AdamEvaluation {
    double energy, maxForce, rmsForce;
};

class AdamStageOps {
public:
    virtual ~AdamStageOps() {}
    /** Energy, forces and the gradient at the current point (a generator's output in a generator stage).
     *  Throws NonFiniteEnergyException on a non-finite energy or force. */
    virtual AdamEvaluation evaluate() = 0;
    /** Whether the evaluated positions hold a contact closer than the settings' collapseDistance. */
    virtual bool collapsedContact() = 0;
    /** Keep the evaluated point as the best. */
    virtual void keepBest() = 0;
    /** The Adam update from the evaluated gradient; step counts from 1 (the bias corrections). */
    virtual void update(int step) = 0;
    /** Leave the Context at the best point kept (when haveBest) and a generator's parameters in place. */
    virtual void finish(bool haveBest) = 0;
    /** After a recorded step: true stops the stage ("reporter"). */
    virtual bool report(int iteration, double energy) { return false; }
};

/** One step (step counts from 1): evaluate, the collapse check on a suspect step, the best point and
 *  convergence by rules, the update. Returns Collapse or rules' verdict; energy is the evaluated energy. */
StepVerdict adamStep(AdamStageOps& ops, StageStopRules& rules, int step, double& energy);

/** One Adam stage over ops (settings validate()d; start: when the stage began, its deadline and times count
 *  from it). outcome.cpuForceEvaluations is left 0. */
AdamStageOutcome runAdamDriver(AdamStageOps& ops, const AdamStageSettings& settings, Clock::time_point start);

} // namespace ReparamPlugin

#endif
