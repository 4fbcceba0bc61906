/* runAdamStage: one Adam stage on any Context, runAdamDriver over the host ops (see AdamStage.h). */
#include "AdamStage.h"
#include "AdamDriver.h"
#include "AdamStepper.h"
#include "TorchThreads.h"
#include <cmath>

using namespace ReparamPlugin;
using namespace OpenMM;

AdamStageOutcome::AdamStageOutcome() : iterations(0), energyEvaluations(0), wallTime(0.0), initialEnergy(NAN),
        bestEnergy(NAN), collapsed(false), stopReason("max_steps"),
        cpuForceEvaluations(0) {
}

AdamStageOutcome ReparamPlugin::runAdamStage(Context& context, ReparamGenerator* generator,
                                             const AdamStageSettings& settings, MinimizationReporter* reporter) {
    settings.validate();
    Clock::time_point start = Clock::now();
    TorchThreadsGuard threads(settings.torchThreads);
    AdamStepper stepper(context, generator, settings, reporter);
    return runAdamDriver(stepper, settings, start);
}
