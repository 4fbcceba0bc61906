/*
 * Tests of the stop request (StopRequest.h) on real Contexts (Reference platform): the SIGINT watch sets it and
 * chains to the handler it replaced, restores that handler when the last watch ends, is heeded only by the
 * watching thread; each host stage (Adam on coordinates and on a generator, FIRE, the precon L-BFGS, the
 * integrator's steps, OpenMM's L-BFGS through StopReporter) stops at the next step with "interrupted" and leaves
 * its best positions in the Context.
 */
#include "AdamStage.h"
#include "FireStage.h"
#include "PreconStage.h"
#include "ReparamIntegrator.h"
#include "StopReporter.h"
#include "StopRequest.h"
#include "TestChain.h"
#include "TestStageSettings.h"
#include "TestUtilities.h"
#include "OpenMM.h"
#include <csignal>
#include <iostream>
#include <memory>
#include <signal.h>
#include <thread>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

static const int N = ChainLength;

/** Asks for a stop (as the SIGINT handler would) when reporting step `at`; never stops the stage itself. */
class StopAt : public MinimizationReporter {
public:
    explicit StopAt(int at) : at(at), calls(0), lowest(INFINITY) {}
    bool report(int iteration, const std::vector<double>& x, const std::vector<double>& grad,
                std::map<std::string, double>& args) {
        if (calls++ == at)
            requestStop();
        lowest = std::min(lowest, args["system energy"]);
        return false;
    }
    int at, calls;
    double lowest;
};

static volatile sig_atomic_t ownHandlerCalls = 0;
static void ownHandler(int) {
    ownHandlerCalls = ownHandlerCalls + 1;
}

static void (*currentHandler())(int) {
    struct sigaction action;
    sigaction(SIGINT, NULL, &action);
    return (action.sa_flags & SA_SIGINFO) ? NULL : action.sa_handler;
}

static void testSignalWatch() {
    REPARAM_ASSERT(currentHandler() == SIG_DFL && interruptWatchCount() == 0);
    requestStop();
    REPARAM_ASSERT(!stopRequested());  // this thread does not watch
    {
        InterruptWatch watch;          // the request is cleared when the first watch begins
        REPARAM_ASSERT(!stopRequested() && currentHandler() == NULL && interruptWatchCount() == 1);
        raise(SIGINT);                 // the default action was there: the first SIGINT only asks to stop
        REPARAM_ASSERT(stopRequested());
        bool seenElsewhere = true;
        std::thread other([&]() { seenElsewhere = stopRequested(); });
        other.join();
        REPARAM_ASSERT(!seenElsewhere);  // a thread that does not watch goes on
        {
            InterruptWatch nested;
            REPARAM_ASSERT(interruptWatchCount() == 2 && stopRequested());
        }
        REPARAM_ASSERT(currentHandler() == NULL && stopRequested());
    }
    REPARAM_ASSERT(currentHandler() == SIG_DFL && interruptWatchCount() == 0);
    signal(SIGINT, ownHandler);  // a handler of one's own is called after the flag is set, and kept afterwards
    {
        InterruptWatch watch;
        raise(SIGINT);
        REPARAM_ASSERT(stopRequested() && ownHandlerCalls == 1);
        clearStopRequest();
        REPARAM_ASSERT(!stopRequested());
    }
    REPARAM_ASSERT(currentHandler() == ownHandler);
    signal(SIGINT, SIG_DFL);
}

static AdamStageSettings adamSettings(int maxSteps) {
    AdamStageSettings s = adamStageSettings(0.002, 0.0, maxSteps, maxSteps);
    s.name = "adam";
    return s;
}

static void testAdamStage() {
    std::unique_ptr<System> system(createChainSystem(true));
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    double start = contextEnergy(context);
    InterruptWatch watch;
    StopAt reporter(10);
    AdamStageOutcome outcome = runAdamStage(context, NULL, adamSettings(1000), &reporter);
    REPARAM_ASSERT(outcome.stopReason == "interrupted" && outcome.iterations == 11);
    REPARAM_ASSERT(outcome.bestEnergy < start);
    REPARAM_ASSERT_CLOSE(contextEnergy(context), outcome.bestEnergy, 1e-9);
    AdamStageOutcome again = runAdamStage(context, NULL, adamSettings(1000), NULL);  // still requested: no step
    REPARAM_ASSERT(again.stopReason == "interrupted" && again.iterations == 0);
    REPARAM_ASSERT_CLOSE(contextEnergy(context), outcome.bestEnergy, 1e-9);
}

static void testFireStage() {
    std::unique_ptr<System> system(createChainSystem(true, true));
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    double start = contextEnergy(context);
    FireStageSettings s = fireStageSettings(5000);
    InterruptWatch watch;
    StopAt reporter(8);
    FireStageOutcome outcome = runFireStage(context, s, 1e-6, &reporter);
    REPARAM_ASSERT(outcome.stopReason == "interrupted" && outcome.iterations == 9);
    REPARAM_ASSERT(outcome.finalEnergy < start && outcome.finalEnergy <= reporter.lowest);
    REPARAM_ASSERT_CLOSE(contextEnergy(context), reporter.lowest, 1e-9);
}

static void testPreconStage() {
    std::unique_ptr<System> system(createChainSystem(false));
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    double start = contextEnergy(context);
    PreconStageSettings s = preconStageSettings(5000, 1e9);
    std::vector<double> indptr(1, 0.0), indices, values;
    for (int i = 0; i < N; i++) {
        indices.push_back(i);
        values.push_back(100.0);
        indptr.push_back(indices.size());
    }
    InterruptWatch watch;
    StopAt reporter(4);
    PreconStageOutcome outcome = runPreconStage(context, s, PreconMatrix(N, indptr, indices, values),
                                                std::vector<int>(), 1e-9, &reporter);
    REPARAM_ASSERT(outcome.stopReason == "interrupted" && outcome.iterations == 5 && outcome.finalEnergy < start);
    REPARAM_ASSERT_CLOSE(contextEnergy(context), reporter.lowest, 1e-9);
}

/** StopReporter in OpenMM's own L-BFGS: it stops it once the request is set (asked at the 6th iteration). */
class StopReporterAt : public StopReporter {
public:
    StopReporterAt(int at) : StopReporter(-1.0), at(at) {}
    bool report(int iteration, const std::vector<double>& x, const std::vector<double>& grad,
                std::map<std::string, double>& args) {
        if (getIterations() == at)
            requestStop();
        return StopReporter::report(iteration, x, grad, args);
    }
    int at;
};

static void testOpenMMMinimizer() {
    std::unique_ptr<System> system(createChainSystem(false));
    VerletIntegrator integrator(0.001);
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    double start = contextEnergy(context);
    InterruptWatch watch;
    StopReporterAt reporter(5);
    LocalEnergyMinimizer::minimize(context, 1e-6, 0, &reporter);
    REPARAM_ASSERT(reporter.getStopReason() == "interrupted" && reporter.getIterations() == 6);
    REPARAM_ASSERT(reporter.getBestEnergy() < start);
    REPARAM_ASSERT_CLOSE(contextEnergy(context), reporter.getBestEnergy(), 1e-9);
    LocalMinimizerOutcome stopped = runLocalEnergyMinimizer(context, 1e-6, 0, -1.0);  // already requested
    REPARAM_ASSERT(stopped.stopReason == "interrupted" && stopped.iterations == 0);
    clearStopRequest();
    LocalMinimizerOutcome late = runLocalEnergyMinimizer(context, 1e-6, 0, 1e-9);  // past its time limit at once
    REPARAM_ASSERT(late.stopReason == "deadline" && late.iterations == 1);
    REPARAM_ASSERT_CLOSE(contextEnergy(context), late.energies[0], 1e-9);
    LocalMinimizerOutcome done = runLocalEnergyMinimizer(context, 1.0, 0, -1.0);
    REPARAM_ASSERT(done.stopReason == "" && done.iterations > 1 && contextEnergy(context) < late.energies[0]);
}

static void testIntegratorSteps() {
    std::unique_ptr<System> system(createChainSystem(false));
    std::vector<double> x0;
    for (const Vec3& p : chainStartPositions())
        for (int j = 0; j < 3; j++)
            x0.push_back(p[j]);
    ReparamGenerator generator("linear");
    generator.setBuffer("modes", std::vector<double>(N, 1.0 / std::sqrt((double) N)), N, 1);
    generator.setBuffer("x0", x0, N, 3);
    generator.addParameter("z", std::vector<double>(3, 0.0), 1, 3);
    ReparamIntegrator integrator(generator, adamSettings(1000));
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    integrator.step(3);
    InterruptWatch watch;
    requestStop();
    integrator.step(100);
    REPARAM_ASSERT(integrator.getNumStepsTaken() == 3);
    clearStopRequest();
    integrator.step(2);
    REPARAM_ASSERT(integrator.getNumStepsTaken() == 5);
}

int main() {
    try {
        testSignalWatch();
        testAdamStage();
        testFireStage();
        testPreconStage();
        testOpenMMMinimizer();
        testIntegratorSteps();
        REPARAM_ASSERT(interruptWatchCount() == 0 && currentHandler() == SIG_DFL);
    }
    catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
