/* The staged run (reparam -> fine -> polish) on any Context; mirrors openmm_reparam/stages.py. */
#include "ReparamStages.h"
#include "AdamOptimizer.h"
#include "EnergyBridge.h"
#include "TorchThreads.h"
#include "openmm/Integrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/State.h"
#include "openmm/System.h"
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {

typedef std::chrono::steady_clock Clock;

double secondsSince(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

/** Bookkeeping shared by the stages of one run (the C++ twin of stages.RunRecorder). */
class RunRecorder {
public:
    RunRecorder(ReparamRunResult& result, MinimizationReporter* reporter, double timeOffset, int maxIterations,
                int iterationOffset) : result(result), reporter(reporter), start(Clock::now()), timeOffset(timeOffset),
                maxIterations(maxIterations), iterations(iterationOffset), stopped(false) {
    }
    /** How many iterations the cap still allows (-1: no cap). */
    int iterationsLeft() const {
        return maxIterations <= 0 ? -1 : std::max(0, maxIterations - iterations);
    }
    /** Log one iteration; returns true when the run must stop (reporter request). */
    bool record(int stage, double energy, const std::vector<double>* x, const std::vector<double>* grad,
                std::map<std::string, double>* extra) {
        result.historyStage.push_back(stage);
        result.historyIteration.push_back(iterations);
        result.historyTime.push_back(timeOffset + secondsSince(start));
        result.historyEnergy.push_back(energy);
        if (reporter != NULL) {
            std::map<std::string, double> args;
            if (extra != NULL)
                args = *extra;
            args["system energy"] = energy;
            args["stage_index"] = stage;
            static const std::vector<double> empty;
            if (reporter->report(iterations, x ? *x : empty, grad ? *grad : empty, args))
                stopped = true;
        }
        iterations++;
        return stopped;
    }
    ReparamRunResult& result;
    MinimizationReporter* reporter;
    Clock::time_point start;
    double timeOffset;
    int maxIterations, iterations;
    bool stopped;
};

/** Forwards OpenMM L-BFGS iterations to the recorder under the polish stage. */
class ForwardingReporter : public MinimizationReporter {
public:
    ForwardingReporter(RunRecorder& recorder, int stage) : recorder(recorder), stage(stage), count(0) {
    }
    bool report(int iteration, const std::vector<double>& x, const std::vector<double>& grad,
                std::map<std::string, double>& args) override {
        count++;
        double energy = args.count("system energy") ? args["system energy"] : std::nan("");
        std::map<std::string, double> extra = args;
        extra.erase("system energy");
        return recorder.record(stage, energy, &x, &grad, &extra);
    }
    RunRecorder& recorder;
    int stage, count;
};

/**
 * Adam on params minimizing the bridge's loss at positions() (see stages.adam_stage): early stopping on the
 * energy at the evaluated positions, collapse guard (a step whose largest atomic force exceeds spikeFactor x the
 * smallest seen is suspect: never the best, and a contact closer than collapseDistance stops the stage), and
 * for the coordinate stage (ontoConstraints) the coordinates are reset to the constrained positions after
 * each evaluation (projected gradient descent).
 */
ReparamStageStats adamStage(const std::string& name, EnergyBridge& bridge, RunRecorder& recorder,
                            const std::vector<at::Tensor>& params, const std::function<at::Tensor()>& positions,
                            double lr, int maxSteps, int patience, double clipNorm, double relTol,
                            const Clock::time_point* deadline, double collapseDistance, double spikeFactor,
                            bool ontoConstraints) {
    Clock::time_point start = Clock::now();
    int stage = (int) recorder.result.stages.size();
    ReparamStageStats stats;
    stats.name = name;
    stats.initialEnergy = stats.finalEnergy = std::nan("");
    AdamOptimizer adam(params, lr);
    int cap = recorder.iterationsLeft();
    if (cap >= 0)
        maxSteps = std::min(maxSteps, cap);
    double bestEnergy = std::numeric_limits<double>::infinity();
    double calmest = std::numeric_limits<double>::infinity();
    bool haveBest = false;
    stats.collapsed = false;
    std::vector<Vec3> bestPositions;
    int waited = 0, steps = 0;
    at::Tensor grad;
    std::vector<double> x, g;
    for (int i = 0; i < maxSteps; i++) {
        if (recorder.stopped || (deadline != NULL && Clock::now() >= *deadline))
            break;
        adam.zeroGrad();
        at::Tensor X = positions();
        double energy;
        double loss = bridge.evaluate(X.detach(), grad, energy);
        (void) loss;
        backward(X, X.device().is_cpu() ? grad : grad.to(X.device()));
        if (ontoConstraints && bridge.getHasConstraints()) {
            at::NoGradGuard noGrad;
            const std::vector<Vec3>& evaluated = bridge.getPositions();
            at::Tensor host = at::empty({(long) evaluated.size(), 3}, at::TensorOptions().dtype(at::kDouble));
            double* h = host.data_ptr<double>();
            for (size_t a = 0; a < evaluated.size(); a++)
                for (int j = 0; j < 3; j++)
                    h[3 * a + j] = evaluated[a][j];
            params[0].copy_(host);
        }
        clipGradNorm(params, clipNorm);
        adam.step();
        steps++;
        if (steps == 1)
            stats.initialEnergy = energy;
        double maxForce = bridge.getLastMaxForce();
        calmest = std::min(calmest, maxForce);
        bool suspect = maxForce > spikeFactor * calmest;
        if (suspect && bridge.hasCollapsedContact(bridge.getPositions(), collapseDistance)) {
            stats.collapsed = true;
            break;
        }
        if (!suspect && (energy < bestEnergy - relTol * std::fabs(bestEnergy) || !haveBest)) {
            bestEnergy = energy;
            bestPositions = bridge.getPositions();
            stats.finalEnergy = energy;
            haveBest = true;
            waited = 0;
        }
        else
            waited++;
        bool stop;
        if (recorder.reporter != NULL) {
            const std::vector<Vec3>& pos = bridge.getPositions();
            const std::vector<Vec3>& f = bridge.getForces();
            x.resize(3 * pos.size());
            g.resize(3 * pos.size());
            for (size_t a = 0; a < pos.size(); a++)
                for (int j = 0; j < 3; j++) {
                    x[3 * a + j] = pos[a][j];
                    g[3 * a + j] = -f[a][j];
                }
            stop = recorder.record(stage, energy, &x, &g, NULL);
        }
        else
            stop = recorder.record(stage, energy, NULL, NULL, NULL);
        if (stop || waited >= patience)
            break;
    }
    if (haveBest)
        bridge.setContextPositions(bestPositions);
    stats.iterations = steps;
    stats.energyEvaluations = steps;
    stats.wallTime = secondsSince(start);
    return stats;
}

ReparamStageStats lbfgsStage(const std::string& name, Context& context, EnergyBridge& bridge, RunRecorder& recorder,
                             double tolerance) {
    Clock::time_point start = Clock::now();
    ReparamStageStats stats;
    stats.name = name;
    stats.collapsed = false;
    stats.initialEnergy = stats.finalEnergy = bridge.currentEnergy();
    stats.iterations = stats.energyEvaluations = 0;
    stats.wallTime = 0.0;
    int cap = recorder.iterationsLeft();
    if (cap == 0 || recorder.stopped)
        return stats;
    ForwardingReporter forwarding(recorder, (int) recorder.result.stages.size());
    LocalEnergyMinimizer::minimize(context, tolerance, cap < 0 ? 0 : cap, &forwarding);
    stats.finalEnergy = bridge.currentEnergy();
    stats.iterations = stats.energyEvaluations = forwarding.count;
    stats.wallTime = secondsSince(start);
    return stats;
}

} // namespace

const ReparamStageStats& ReparamRunResult::getStage(int index) const {
    return stages.at(index);
}

ReparamRunResult ReparamPlugin::runReparamStages(Context& context, ReparamGenerator* generator,
                                                 const ReparamOptions& options, double tolerance,
                                                 MinimizationReporter* reporter) {
    TorchThreadsGuard threads(options.torchThreads);
    Integrator& integrator = context.getIntegrator();
    EnergyBridge bridge(context, integrator.getConstraintTolerance(), integrator.getIntegrationForceGroups(),
                        options.constraintStiffness);
    bridge.captureStart();
    ReparamRunResult result;
    RunRecorder recorder(result, reporter, options.timeOffset, options.maxIterations, options.iterationOffset);
    Clock::time_point runStart = Clock::now();
    bool limited = options.timeBudget >= 0.0;
    Clock::time_point deadline = runStart + std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(limited ? options.timeBudget : 0.0));
    if (generator != NULL) {
        generator->validate();
        if (generator->getNumAtoms() != context.getSystem().getNumParticles())
            throw OpenMMException("runReparamStages: the generator and the System have different numbers of atoms");
        Clock::time_point now = Clock::now();
        double remaining = std::max(0.0, std::chrono::duration<double>(deadline - now).count());
        Clock::time_point reparamDeadline = now + std::chrono::duration_cast<Clock::duration>(
                std::chrono::duration<double>(options.reparamShare * remaining));
        ReparamGenerator& gen = *generator;
        result.stages.push_back(adamStage("reparam", bridge, recorder, gen.parameters(), [&gen]() { return gen.forward(); },
                options.lr, options.steps, options.patience, options.clipNorm, options.relTol,
                limited ? &reparamDeadline : NULL, options.collapseDistance, options.spikeFactor, false));
    }
    at::Tensor coordinates = bridge.currentPositions().requires_grad_(true);
    std::vector<at::Tensor> coordinateParams{coordinates};
    result.stages.push_back(adamStage(options.fineStageName, bridge, recorder, coordinateParams,
            [&coordinates]() { return coordinates; }, options.fineLr, options.fineSteps, options.finePatience,
            options.clipNorm, options.relTol, limited ? &deadline : NULL, options.collapseDistance,
            options.spikeFactor, true));
    if (options.polish) {
        // L-BFGS, restarted (fresh curvature memory) while it still lowers the energy but the forces are above
        // the tolerance, as minimizer.ReparamMinimizer._polish does.
        ReparamStageStats total = lbfgsStage("polish", context, bridge, recorder, tolerance);
        ReparamStageStats round = total;
        for (int r = 1; r < options.polishRounds; r++) {
            if (recorder.stopped || bridge.currentRmsForce() <= tolerance ||
                    !(round.finalEnergy < round.initialEnergy - 1e-6 * std::fabs(round.initialEnergy)))
                break;
            round = lbfgsStage("polish", context, bridge, recorder, tolerance);
            total.iterations += round.iterations;
            total.energyEvaluations += round.energyEvaluations;
            total.wallTime += round.wallTime;
            total.finalEnergy = round.finalEnergy;
        }
        result.stages.push_back(total);
    }
    else if (bridge.getHasConstraints())
        context.applyConstraints(bridge.getConstraintTolerance());
    result.stopped = recorder.stopped;
    return result;
}
