/* runFireStage: one FIRE 2.0 stage on the coordinates (see FireStage.h and openmm_reparam/engines/fire.py). */
#include "FireStage.h"
#include "FireDriver.h"
#include "MovableParticles.h"
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

/** FIRE's vectors on the host: F, v, D, B on the movable atoms, x and the best point on all, the Context through
 *  EnergyBridge (Python: engines.fire.FireState). */
class HostFireOps : public FireVectorOps {
public:
    HostFireOps(Context& context, MinimizationReporter* reporter) : reporter(reporter),
            bridge(context, context.getIntegrator().getConstraintTolerance(),
                   context.getIntegrator().getIntegrationForceGroups(), 0.0),
            projector(context.getSystem()), n(context.getSystem().getNumParticles()),
            movable(movableIndices(context.getSystem())) {
        buffer.resize(3 * n);
        at::Tensor start = bridge.currentPositions();
        std::copy(start.data_ptr<double>(), start.data_ptr<double>() + 3 * n, buffer.begin());
        size_t m = movable.size();
        v.assign(m, Vec3());
        lastStep.assign(m, Vec3());
        back.assign(m, Vec3());
    }
    int getNumMovable() const override {
        return (int) movable.size();
    }
    /** Evaluate buffer's positions: x, E, F = F_perp on the movable atoms; false (state untouched) if not finite. */
    bool evaluate(double& energy) override {
        at::Tensor X = at::from_blob(buffer.data(), {n, 3}, at::TensorOptions().dtype(at::kDouble));
        try {
            bridge.evaluate(X, grad, energy);
        }
        catch (NonFiniteEnergyException&) {
            return false;
        }
        const double* g = grad.data_ptr<double>();
        x = bridge.getPositions();
        force.resize(movable.size());
        for (size_t a = 0; a < movable.size(); a++)
            for (int j = 0; j < 3; j++)
                force[a][j] = -g[3 * movable[a] + j];
        return true;
    }
    double forceSquared() const override {
        return dot(force, force);
    }
    double power() const override {
        return dot(force, v);
    }
    bool velocityIsZero() const override {
        for (const Vec3& a : v)
            if (a[0] != 0.0 || a[1] != 0.0 || a[2] != 0.0)
                return false;
        return true;
    }
    void resetVelocity() override {
        for (size_t a = 0; a < v.size(); a++) {
            back[a] = lastStep[a] * -0.5;
            v[a] = Vec3();
        }
    }
    void move(double dt, double alpha, double maxStep) override {
        for (size_t a = 0; a < v.size(); a++)
            v[a] += force[a] * dt;
        double forceNorm = std::sqrt(dot(force, force));
        if (forceNorm > 0) {
            double mix = alpha * std::sqrt(dot(v, v)) / forceNorm;
            for (size_t a = 0; a < v.size(); a++)
                v[a] = v[a] * (1.0 - alpha) + force[a] * mix;
        }
        step.resize(v.size());
        double longest = 0.0;
        for (size_t a = 0; a < v.size(); a++) {
            step[a] = v[a] * dt;
            longest = std::max(longest, std::sqrt(step[a].dot(step[a])));
        }
        if (longest > maxStep)
            for (Vec3& d : step)
                d *= maxStep / longest;
        for (size_t a = 0; a < movable.size(); a++)
            for (int j = 0; j < 3; j++) {
                double t = x[movable[a]][j] + back[a][j];
                buffer[3 * movable[a] + j] = t + step[a][j];
            }
        for (int i = 0; i < n; i++)
            if (!std::binary_search(movable.begin(), movable.end(), i))
                for (int j = 0; j < 3; j++)
                    buffer[3 * i + j] = x[i][j];
        back.assign(v.size(), Vec3());
    }
    void reject() override {
        v.assign(v.size(), Vec3());
        lastStep.assign(v.size(), Vec3());
    }
    void accept() override {
        lastStep = step;
        if (bridge.getHasConstraints()) {
            std::vector<Vec3> full(n);
            for (size_t a = 0; a < movable.size(); a++)
                full[movable[a]] = v[a];
            projector.project(full, x);
            for (size_t a = 0; a < movable.size(); a++)
                v[a] = full[movable[a]];
        }
    }
    void saveBest() override {
        bestX = x;
    }
    void finish(bool atLast) override {
        bridge.setContextPositions(atLast ? x : bestX);
    }
    /** x (3N values) and -F_perp on all particles (zero on fixed ones), flattened, to the reporter. */
    bool report(int iteration, double energy, double rmsForce) override {
        if (reporter == NULL)
            return false;
        xs.assign(3 * n, 0.0);
        gs.assign(3 * n, 0.0);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < 3; j++)
                xs[3 * i + j] = x[i][j];
        for (size_t a = 0; a < movable.size(); a++)
            for (int j = 0; j < 3; j++)
                gs[3 * movable[a] + j] = -force[a][j];
        std::map<std::string, double> args;
        args["system energy"] = energy;
        args["rms force"] = rmsForce;
        return reporter->report(iteration, xs, gs, args);
    }
private:
    MinimizationReporter* reporter;
    EnergyBridge bridge;
    ConstraintProjector projector;
    int n;
    std::vector<int> movable;
    std::vector<double> buffer, xs, gs;
    at::Tensor grad;
    std::vector<Vec3> x, bestX, force, v, lastStep, back, step;
};

} // namespace

FireStageOutcome::FireStageOutcome() : iterations(0), energyEvaluations(0), wallTime(0.0), initialEnergy(NAN),
        finalEnergy(NAN), finalRmsForce(NAN), stopReason("max_steps"), cpuForceEvaluations(0) {
}

FireStageOutcome ReparamPlugin::runFireStage(Context& context, const FireStageSettings& settings, double tolerance,
                                             MinimizationReporter* reporter) {
    settings.validate();
    Clock::time_point start = Clock::now();
    HostFireOps ops(context, reporter);
    return runFireDriver(ops, settings, tolerance, start);
}
