/* runAdamDriver and adamStep: an Adam stage's loop and its step over AdamStageOps (see AdamDriver.h). */
#include "AdamDriver.h"
#include <cmath>

using namespace ReparamPlugin;

StepVerdict ReparamPlugin::adamStep(AdamStageOps& ops, StageStopRules& rules, int step, double& energy) {
    AdamEvaluation evaluation = ops.evaluate();
    energy = evaluation.energy;
    bool suspect = rules.suspect(evaluation.maxForce);
    bool collapse = suspect && ops.collapsedContact();
    bool converged = false;
    if (!collapse) {
        bool improved = rules.improves(energy, suspect), convergedIsBest;
        converged = rules.converged(energy, evaluation.rmsForce, convergedIsBest);  // may make this the best
        if (improved || convergedIsBest)
            ops.keepBest();
    }
    // The update comes before the verdict, a collapsing step's too: a generator stage hands back the parameters
    // after its last step (the coordinates go back to the best point either way).
    ops.update(step);
    if (collapse)
        return StepVerdict::Collapse;
    StepVerdict verdict = rules.verdict();
    return converged ? StepVerdict::Converged : verdict;
}

AdamStageOutcome ReparamPlugin::runAdamDriver(AdamStageOps& ops, const AdamStageSettings& settings,
                                              Clock::time_point start) {
    StageStopRules rules(settings);
    AdamStageOutcome outcome;
    int steps = 0;
    for (int i = 0; i < settings.maxSteps; i++) {
        if (const char* reason = stopBeforeStep(settings.timeLimit, start)) {
            outcome.stopReason = reason;
            break;
        }
        double energy;
        StepVerdict verdict = adamStep(ops, rules, i + 1, energy);
        if (steps++ == 0)
            outcome.initialEnergy = energy;
        if (verdict == StepVerdict::Collapse) {
            outcome.stopReason = verdictName(verdict);
            break;
        }
        outcome.energies.push_back(energy);
        outcome.times.push_back(secondsSince(start));
        if (ops.report(i, energy)) {
            outcome.stopReason = "reporter";
            break;
        }
        if (verdict != StepVerdict::Continue) {
            outcome.stopReason = verdictName(verdict);
            break;
        }
    }
    ops.finish(rules.hasBest());
    outcome.iterations = outcome.energyEvaluations = steps;
    outcome.bestEnergy = rules.hasBest() ? rules.getBestEnergy() : NAN;
    outcome.collapsed = outcome.stopReason == "collapse";
    outcome.wallTime = secondsSince(start);
    return outcome;
}
