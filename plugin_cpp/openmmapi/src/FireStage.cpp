/* runFireStage: one FIRE 2.0 stage on the coordinates (see FireStage.h and openmm_reparam/engines/fire.py). */
#include "FireStage.h"
#include "MovableParticles.h"
#include "StageClock.h"
#include "StopRequest.h"
#include "ConstraintProjector.h"
#include "EnergyBridge.h"
#include "NonFiniteEnergyException.h"
#include "openmm/Integrator.h"
#include "openmm/System.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {


double dot(const std::vector<Vec3>& a, const std::vector<Vec3>& b) {
    double sum = 0.0;
    for (size_t i = 0; i < a.size(); i++)
        sum += a[i][0] * b[i][0] + a[i][1] * b[i][1] + a[i][2] * b[i][2];
    return sum;
}

/** The FIRE iterate on the movable atoms and its update rules (Python: engines.fire.FireState). */
class FireIterate {
public:
    FireIterate(Context& context, const FireStageSettings& settings) : s(settings),
            bridge(context, context.getIntegrator().getConstraintTolerance(),
                   context.getIntegrator().getIntegrationForceGroups(), 0.0),
            projector(context.getSystem()), n(context.getSystem().getNumParticles()) {
        const System& system = context.getSystem();
        movable = movableIndices(system);
        buffer.resize(3 * n);
        at::Tensor start = bridge.currentPositions();
        std::copy(start.data_ptr<double>(), start.data_ptr<double>() + 3 * n, buffer.begin());
        if (!evaluate())
            throw NonFiniteEnergyException("runFireStage: the starting point has a non-finite energy or forces");
        size_t m = movable.size();
        v.assign(m, Vec3());
        lastStep.assign(m, Vec3());
        back.assign(m, Vec3());
        dt = s.dt;
        alpha = s.alphaStart;
        nPositive = nNegative = 0;
        evaluations = 1;
        bestEnergy = energy;
        bestX = x;
    }
    double rmsForce() const {
        return force.empty() ? 0.0 : std::sqrt(dot(force, force) / force.size());
    }
    bool velocityIsZero() const {
        for (const Vec3& a : v)
            if (a[0] != 0.0 || a[1] != 0.0 || a[2] != 0.0)
                return false;
        return true;
    }
    /** Step 2; false when stuck. */
    bool adapt(int iteration) {
        if (velocityIsZero())
            return true;
        double power = dot(force, v);
        if (power > 0) {
            nPositive++;
            nNegative = 0;
            if (nPositive > s.nDelay) {
                dt = std::min(dt * s.fInc, s.dtMax);
                alpha = alpha * s.fAlpha;
            }
            return true;
        }
        nPositive = 0;
        nNegative++;
        if (nNegative > s.maxUphill)
            return false;
        if (!(s.initialDelay == 1 && iteration < s.nDelay)) {
            dt = std::max(dt * s.fDec, s.dtMin);
            alpha = s.alphaStart;
        }
        for (size_t a = 0; a < v.size(); a++) {
            back[a] = lastStep[a] * -0.5;
            v[a] = Vec3();
        }
        return true;
    }
    /** Steps 3-4: velocity update, mixing, the capped displacement. */
    std::vector<Vec3> proposal() {
        for (size_t a = 0; a < v.size(); a++)
            v[a] += force[a] * dt;
        double forceNorm = std::sqrt(dot(force, force));
        if (forceNorm > 0) {
            double mix = alpha * std::sqrt(dot(v, v)) / forceNorm;
            for (size_t a = 0; a < v.size(); a++)
                v[a] = v[a] * (1.0 - alpha) + force[a] * mix;
        }
        std::vector<Vec3> step(v.size());
        double longest = 0.0;
        for (size_t a = 0; a < v.size(); a++) {
            step[a] = v[a] * dt;
            longest = std::max(longest, std::sqrt(step[a].dot(step[a])));
        }
        if (longest > s.maxStep)
            for (Vec3& d : step)
                d *= s.maxStep / longest;
        return step;
    }
    /** Steps 3-6; false (state reset) on a non-finite energy. */
    bool advance() {
        std::vector<Vec3> step = proposal();
        for (size_t a = 0; a < movable.size(); a++)
            for (int j = 0; j < 3; j++) {
                double t = x[movable[a]][j] + back[a][j];
                buffer[3 * movable[a] + j] = t + step[a][j];
            }
        for (int i = 0; i < n; i++)
            if (!isMovable(i))
                for (int j = 0; j < 3; j++)
                    buffer[3 * i + j] = x[i][j];
        back.assign(v.size(), Vec3());
        evaluations++;
        if (!evaluate()) {
            v.assign(v.size(), Vec3());
            lastStep.assign(v.size(), Vec3());
            alpha = s.alphaStart;
            dt = dt * s.fDec;
            nPositive = 0;
            nNegative++;
            return false;
        }
        lastStep = step;
        if (bridge.getHasConstraints()) {
            std::vector<Vec3> full(n);
            for (size_t a = 0; a < movable.size(); a++)
                full[movable[a]] = v[a];
            projector.project(full, x);
            for (size_t a = 0; a < movable.size(); a++)
                v[a] = full[movable[a]];
        }
        if (energy < bestEnergy) {
            bestEnergy = energy;
            bestX = x;
        }
        return true;
    }
    /** x (3N values) and -F_perp on all particles (zero on fixed ones), flattened for a reporter. */
    void flatten(std::vector<double>& xs, std::vector<double>& gs) const {
        xs.assign(3 * n, 0.0);
        gs.assign(3 * n, 0.0);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < 3; j++)
                xs[3 * i + j] = x[i][j];
        for (size_t a = 0; a < movable.size(); a++)
            for (int j = 0; j < 3; j++)
                gs[3 * movable[a] + j] = -force[a][j];
    }
    void leaveContextAt(const std::vector<Vec3>& positions) {
        bridge.setContextPositions(positions);
    }
    const FireStageSettings& s;
    double energy, bestEnergy, dt, alpha;
    int nPositive, nNegative, evaluations;
    std::vector<Vec3> x, bestX;
private:
    bool isMovable(int i) const {
        return std::binary_search(movable.begin(), movable.end(), i);
    }
    /** Evaluate buffer's positions: x, E, F = F_perp on the movable atoms; false (state untouched) if not finite. */
    bool evaluate() {
        at::Tensor X = at::from_blob(buffer.data(), {n, 3}, at::TensorOptions().dtype(at::kDouble));
        double e;
        try {
            bridge.evaluate(X, grad, e);
        }
        catch (NonFiniteEnergyException&) {
            return false;
        }
        const double* g = grad.data_ptr<double>();
        energy = e;
        x = bridge.getPositions();
        force.resize(movable.size());
        for (size_t a = 0; a < movable.size(); a++)
            for (int j = 0; j < 3; j++)
                force[a][j] = -g[3 * movable[a] + j];
        return true;
    }
    EnergyBridge bridge;
    ConstraintProjector projector;
    int n;
    std::vector<int> movable;
    std::vector<double> buffer;
    at::Tensor grad;
    std::vector<Vec3> force, v, lastStep, back;
};

bool report(MinimizationReporter& reporter, const FireIterate& state, int iteration, std::vector<double>& xs,
            std::vector<double>& gs) {
    state.flatten(xs, gs);
    std::map<std::string, double> args;
    args["system energy"] = state.energy;
    args["rms force"] = state.rmsForce();
    return reporter.report(iteration, xs, gs, args);
}

} // namespace

FireStageOutcome::FireStageOutcome() : iterations(0), energyEvaluations(0), wallTime(0.0), initialEnergy(NAN),
        finalEnergy(NAN), finalRmsForce(NAN), stopReason("max_steps"), cpuForceEvaluations(0) {
}

FireStageOutcome ReparamPlugin::runFireStage(Context& context, const FireStageSettings& settings, double tolerance,
                                             MinimizationReporter* reporter) {
    settings.validate();
    Clock::time_point start = Clock::now();
    double target = tolerance * settings.toleranceFactor;
    FireIterate state(context, settings);
    FireStageOutcome outcome;
    outcome.initialEnergy = state.energy;
    std::vector<double> xs, gs;
    for (int i = 0; i < settings.maxSteps; i++) {
        if (state.rmsForce() <= target) {
            outcome.stopReason = "converged";
            break;
        }
        if (stopRequested()) {
            outcome.stopReason = "interrupted";
            break;
        }
        if (settings.timeLimit >= 0 && secondsSince(start) >= settings.timeLimit) {
            outcome.stopReason = "deadline";
            break;
        }
        if (!state.adapt(i)) {
            outcome.stopReason = "stuck";
            break;
        }
        if (!state.advance()) {
            if (state.nNegative > settings.maxUphill) {
                outcome.stopReason = "stuck";
                break;
            }
            continue;
        }
        outcome.energies.push_back(state.energy);
        outcome.times.push_back(secondsSince(start));
        if (reporter != NULL && report(*reporter, state, (int) outcome.energies.size() - 1, xs, gs)) {
            outcome.stopReason = "reporter";
            break;
        }
    }
    if (outcome.stopReason == "max_steps" && state.rmsForce() <= target)
        outcome.stopReason = "converged";
    bool converged = outcome.stopReason == "converged";
    outcome.finalRmsForce = state.rmsForce();
    state.leaveContextAt(converged ? state.x : state.bestX);
    outcome.finalEnergy = converged ? state.energy : state.bestEnergy;
    outcome.iterations = (int) outcome.energies.size();
    outcome.energyEvaluations = state.evaluations;
    outcome.wallTime = secondsSince(start);
    return outcome;
}
