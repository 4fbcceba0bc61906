/* runAdamStage: one Adam stage on any Context (see AdamStage.h). */
#include "AdamStage.h"
#include "StageClock.h"
#include "StopRequest.h"
#include "AdamStepper.h"
#include "TorchThreads.h"
#include <chrono>
#include <cmath>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {


/** Hand one step to the reporter: flattened positions, minus the raw forces; true if it asks to stop. */
bool report(MinimizationReporter& reporter, const AdamStepper& stepper, int iteration, std::vector<double>& x,
            std::vector<double>& g) {
    const std::vector<Vec3>& positions = stepper.getLastPositions();
    const std::vector<Vec3>& forces = stepper.getLastForces();
    x.resize(3 * positions.size());
    g.resize(3 * positions.size());
    for (size_t a = 0; a < positions.size(); a++)
        for (int j = 0; j < 3; j++) {
            x[3 * a + j] = positions[a][j];
            g[3 * a + j] = -forces[a][j];
        }
    std::map<std::string, double> args;
    args["system energy"] = stepper.getLastEnergy();
    return reporter.report(iteration, x, g, args);
}

} // namespace

AdamStageOutcome::AdamStageOutcome() : iterations(0), energyEvaluations(0), wallTime(0.0), initialEnergy(NAN),
        bestEnergy(NAN), collapsed(false), stopReason("max_steps"),
        cpuForceEvaluations(0) {
}

AdamStageOutcome ReparamPlugin::runAdamStage(Context& context, ReparamGenerator* generator,
                                             const AdamStageSettings& settings, MinimizationReporter* reporter) {
    settings.validate();
    Clock::time_point start = Clock::now();
    TorchThreadsGuard threads(settings.torchThreads);
    AdamStepper stepper(context, generator, settings);
    AdamStageOutcome outcome;
    std::vector<double> x, g;
    for (int i = 0; i < settings.maxSteps; i++) {
        if (const char* reason = stopBeforeStep(settings.timeLimit, start)) {
            outcome.stopReason = reason;
            break;
        }
        StepVerdict verdict = stepper.step();
        if (verdict == StepVerdict::Collapse) {
            outcome.stopReason = verdictName(verdict);
            break;
        }
        outcome.energies.push_back(stepper.getLastEnergy());
        outcome.times.push_back(secondsSince(start));
        if (reporter != NULL && report(*reporter, stepper, i, x, g)) {
            outcome.stopReason = "reporter";
            break;
        }
        if (verdict != StepVerdict::Continue) {
            outcome.stopReason = verdictName(verdict);
            break;
        }
    }
    stepper.applyBestPositions();
    const StageTracker& tracker = stepper.getTracker();
    outcome.iterations = outcome.energyEvaluations = stepper.getStepsTaken();
    outcome.initialEnergy = tracker.getFirstEnergy();
    outcome.bestEnergy = tracker.hasBest() ? tracker.getBestEnergy() : NAN;
    outcome.collapsed = outcome.stopReason == "collapse";
    outcome.wallTime = secondsSince(start);
    return outcome;
}
