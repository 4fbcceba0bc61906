/* PreconStage: the precon stage's preconditioned L-BFGS (see PreconStage.h and openmm_reparam/engines/precon.py). */
#include "PreconStage.h"
#include "ArmijoRule.h"
#include "MovableParticles.h"
#include "StageClock.h"
#include "StopRequest.h"
#include "NonFiniteEnergyException.h"
#include "openmm/Integrator.h"
#include "openmm/System.h"
#include <algorithm>
#include <cmath>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {

/** numpy's pairwise summation (numpy/_core/src/umath/loops_utils.h.src), so sums round as ndarray.sum() does. */
double pairwiseSum(const double* a, long n) {
    if (n < 8) {
        double res = 0.0;
        for (long i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        long i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    long n2 = n / 2;
    n2 -= n2 % 8;
    return pairwiseSum(a, n2) + pairwiseSum(a + n2, n - n2);
}

/** float((a * b).sum()) */
double dot(const std::vector<double>& a, const std::vector<double>& b) {
    thread_local std::vector<double> products;
    products.resize(a.size());
    for (size_t i = 0; i < a.size(); i++)
        products[i] = a[i] * b[i];
    return pairwiseSum(products.data(), (long) products.size());
}

/** float(np.sqrt((d * d).sum(axis=1)).max()) over rows of 3 (0 for none). */
double longestRow(const std::vector<double>& d) {
    double longest = 0.0;
    for (size_t a = 0; 3 * a < d.size(); a++) {
        double sum = 0.0;
        for (int c = 0; c < 3; c++)
            sum += d[3 * a + c] * d[3 * a + c];
        longest = std::max(longest, std::sqrt(sum));
    }
    return longest;
}

} // namespace

PreconStageOutcome::PreconStageOutcome() : iterations(0), energyEvaluations(0), wallTime(0.0), initialEnergy(NAN),
        finalEnergy(NAN), finalRmsForce(NAN), rebuilds(0), reporterStopped(false), stopReason("max_steps"),
        cpuForceEvaluations(0) {
}

PreconStage::PreconStage(Context& context, const PreconStageSettings& settings, const PreconMatrix& precon,
                         const std::vector<int>& coupled, double tolerance) : settings(settings), precon(precon),
        bridge(context, context.getIntegrator().getConstraintTolerance(),
               context.getIntegrator().getIntegrationForceGroups(), 0.0),
        clock(Clock::now()), coupled(coupled), target(tolerance * settings.toleranceFactor), evaluations(1),
        rebuilds(0) {
    settings.validate();
    const System& system = context.getSystem();
    numParticles = system.getNumParticles();
    movable = movableIndices(system);
    if (precon.size() != (int) movable.size())
        throw OpenMMException("PreconStage: P must have one row per movable particle");
    for (int i : coupled)
        if (i < 0 || i >= numParticles)
            throw OpenMMException("PreconStage: coupled particle index out of range");
    buffer = at::empty({numParticles, 3}, at::TensorOptions().dtype(at::kDouble));
    at::Tensor start = bridge.currentPositions();
    if (!evaluate(std::vector<double>(start.data_ptr<double>(), start.data_ptr<double>() + 3 * numParticles)))
        throw NonFiniteEnergyException("the force field returned a non-finite energy or forces at the start of "
                                       "the precon stage");
    energy = trialEnergy;
    x.swap(trialX);
    gradient.swap(trialGradient);
    initialEnergy = energy;
    setPreconditioner(precon);
    rebuilds = 0;
}

void PreconStage::setPreconditioner(const PreconMatrix& matrix) {
    if (matrix.size() != (int) movable.size())
        throw OpenMMException("PreconStage: P must have one row per movable particle");
    precon = matrix;
    pairs.clear();
    anchor.resize(3 * coupled.size());
    for (size_t a = 0; a < coupled.size(); a++)
        for (int c = 0; c < 3; c++)
            anchor[3 * a + c] = x[3 * coupled[a] + c];
    rebuilds++;
}

bool PreconStage::evaluate(const std::vector<double>& positions) {
    std::copy(positions.begin(), positions.end(), buffer.data_ptr<double>());
    double e;
    try {
        bridge.evaluate(buffer, grad, e);
    }
    catch (NonFiniteEnergyException&) {
        return false;
    }
    trialEnergy = e;
    const std::vector<Vec3>& evaluated = bridge.getPositions();
    trialX.resize(3 * numParticles);
    for (int i = 0; i < numParticles; i++)
        for (int c = 0; c < 3; c++)
            trialX[3 * i + c] = evaluated[i][c];
    const double* g = grad.data_ptr<double>();
    trialGradient.resize(3 * movable.size());
    for (size_t a = 0; a < movable.size(); a++)
        for (int c = 0; c < 3; c++)
            trialGradient[3 * a + c] = g[3 * movable[a] + c];
    return true;
}

double PreconStage::rmsForce() const {
    size_t n = movable.size();
    return n == 0 ? 0.0 : std::sqrt(dot(gradient, gradient) / (double) n);
}

void PreconStage::direction(std::vector<double>& z) const {
    std::vector<double> q = gradient, alphas;
    for (size_t k = pairs.size(); k-- > 0;) {
        const Pair& p = pairs[k];
        double a = p.rho * dot(p.s, q);
        for (size_t i = 0; i < q.size(); i++)
            q[i] -= a * p.y[i];
        alphas.push_back(a);
    }
    z = q;
    precon.solve(z);
    if (!pairs.empty()) {
        const Pair& p = pairs.back();
        std::vector<double> solved = p.y;
        precon.solve(solved);
        double scale = (1.0 / p.rho) / std::max(dot(p.y, solved), 1e-300);
        for (double& value : z)
            value *= scale;
    }
    for (size_t k = 0; k < pairs.size(); k++) {
        const Pair& p = pairs[k];
        double b = alphas[pairs.size() - 1 - k] - p.rho * dot(p.y, z);
        for (size_t i = 0; i < z.size(); i++)
            z[i] += p.s[i] * b;
    }
    for (double& value : z)
        value = -value;
}

bool PreconStage::lineSearch(const std::vector<double>& d) {
    double slope = dot(gradient, d);
    double alpha = armijoFirstStep(slope, longestRow(d), settings.maxStep);
    if (alpha == 0)
        return false;
    std::vector<double> moved(x.size());
    for (int trial = 1; trial <= MAX_BACKTRACKS; trial++) {
        moved = x;
        for (size_t a = 0; a < movable.size(); a++)
            for (int c = 0; c < 3; c++)
                moved[3 * movable[a] + c] += alpha * d[3 * a + c];
        evaluations++;
        bool finite = evaluate(moved);
        if (armijoAccepts(finite, finite ? trialEnergy - energy : 0.0, slope, alpha))
            return true;
    }
    return false;
}

bool PreconStage::step() {
    std::vector<double> d;
    direction(d);
    bool found = lineSearch(d);
    if (!found && !pairs.empty()) {
        pairs.clear();
        direction(d);
        found = lineSearch(d);
    }
    if (!found)
        return false;
    Pair pair;
    pair.s.resize(gradient.size());
    pair.y.resize(gradient.size());
    for (size_t a = 0; a < movable.size(); a++)
        for (int c = 0; c < 3; c++) {
            int i = 3 * movable[a] + c;
            pair.s[3 * a + c] = trialX[i] - x[i];
        }
    for (size_t i = 0; i < gradient.size(); i++)
        pair.y[i] = trialGradient[i] - gradient[i];
    double sy = dot(pair.s, pair.y);
    if (sy > 1e-12 * std::sqrt(dot(pair.s, pair.s) * dot(pair.y, pair.y)) && sy > 0) {
        pair.rho = 1.0 / sy;
        pairs.push_back(pair);
        if ((int) pairs.size() > settings.memory)
            pairs.erase(pairs.begin(), pairs.end() - settings.memory);
    }
    energy = trialEnergy;
    x.swap(trialX);
    gradient.swap(trialGradient);
    return true;
}

bool PreconStage::needsRebuild() const {
    double moved = 0.0;
    for (size_t a = 0; a < coupled.size(); a++) {
        double sum = 0.0;
        for (int c = 0; c < 3; c++) {
            double delta = x[3 * coupled[a] + c] - anchor[3 * a + c];
            sum += delta * delta;
        }
        moved = std::max(moved, std::sqrt(sum));
    }
    return !coupled.empty() && moved > settings.rebuildDistance;
}

bool PreconStage::report(MinimizationReporter& reporter, int iteration, int rebuildsShown) {
    std::vector<double> gs(3 * numParticles, 0.0);
    for (size_t a = 0; a < movable.size(); a++)
        for (int c = 0; c < 3; c++)
            gs[3 * movable[a] + c] = gradient[3 * a + c];
    std::map<std::string, double> args;
    args["system energy"] = energy;
    args["rms force"] = rmsForce();
    args["rebuilds"] = rebuildsShown;
    return reporter.report(iteration, x, gs, args);
}

PreconStageOutcome PreconStage::run(int maxSteps, bool stopped, MinimizationReporter* reporter) {
    PreconStageOutcome outcome;
    for (int i = 0; i < maxSteps; i++) {
        if (rmsForce() <= target) {
            outcome.stopReason = "converged";
            break;
        }
        const char* reason = stopRequested() ? "interrupted"
                             : stopped       ? "reporter"
                                             : stopBeforeStep(settings.timeLimit, clock);
        if (reason != nullptr) {
            outcome.stopReason = reason;
            break;
        }
        if (!step()) {
            outcome.stopReason = "stuck";
            break;
        }
        outcome.energies.push_back(energy);
        outcome.times.push_back(secondsSince(clock));
        bool rebuild = needsRebuild();
        if (reporter != NULL)
            stopped = report(*reporter, (int) outcome.energies.size() - 1, rebuilds + (rebuild ? 1 : 0));
        if (rebuild) {
            outcome.stopReason = "rebuild";
            outcome.reporterStopped = stopped;
            break;
        }
        if (stopped) {
            outcome.stopReason = "reporter";
            break;
        }
    }
    if (outcome.stopReason == "max_steps" && rmsForce() <= target)
        outcome.stopReason = "converged";
    outcome.iterations = (int) outcome.energies.size();
    outcome.energyEvaluations = evaluations;
    outcome.wallTime = secondsSince(clock);
    outcome.initialEnergy = initialEnergy;
    outcome.finalEnergy = energy;
    outcome.finalRmsForce = rmsForce();
    outcome.rebuilds = rebuilds;
    return outcome;
}

void PreconStage::leaveContext() {
    std::vector<Vec3> positions(numParticles);
    for (int i = 0; i < numParticles; i++)
        positions[i] = Vec3(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
    bridge.setContextPositions(positions);
}

std::vector<double> PreconStage::getPositions() const {
    return x;
}

PreconStageOutcome ReparamPlugin::runPreconStage(Context& context, const PreconStageSettings& settings,
                                                 const PreconMatrix& precon, const std::vector<int>& coupled,
                                                 double tolerance, MinimizationReporter* reporter) {
    PreconStage stage(context, settings, precon, coupled, tolerance);
    PreconStageOutcome outcome = stage.run(settings.maxSteps, false, reporter);
    stage.leaveContext();
    return outcome;
}
