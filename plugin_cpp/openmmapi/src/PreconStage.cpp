/* PreconStage: the precon stage's preconditioned L-BFGS on the host: PreconDriver over HostPreconOps (see
 * PreconStage.h, PreconDriver.h and openmm_reparam/engines/precon.py). */
#include "PreconStage.h"
#include "MovableParticles.h"
#include "NonFiniteEnergyException.h"
#include "PreconDriver.h"
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

namespace ReparamPlugin {

/** The host's PreconVectorOps: x on all particles, g and the (s, y) slots on the movable coordinates, the
 *  arithmetic of engines.precon (sums are numpy's pairwise sums), energies and forces through EnergyBridge. */
class HostPreconOps : public PreconVectorOps {
public:
    HostPreconOps(Context& context, const PreconStageSettings& settings, const PreconMatrix& precon,
                  const std::vector<int>& coupled) : precon(precon),
            bridge(context, context.getIntegrator().getConstraintTolerance(),
                   context.getIntegrator().getIntegrationForceGroups(), 0.0),
            reporter(NULL), coupled(coupled) {
        settings.validate();
        const System& system = context.getSystem();
        numParticles = system.getNumParticles();
        movable = movableIndices(system);
        setPrecon(precon);
        for (int i : coupled)
            if (i < 0 || i >= numParticles)
                throw OpenMMException("PreconStage: coupled particle index out of range");
        s.assign(settings.memory + 1, std::vector<double>(3 * movable.size()));
        y.assign(settings.memory + 1, std::vector<double>(3 * movable.size()));
        alphas.resize(settings.memory);
        buffer = at::empty({numParticles, 3}, at::TensorOptions().dtype(at::kDouble));
    }
    void setPrecon(const PreconMatrix& matrix) {
        if (matrix.size() != (int) movable.size())
            throw OpenMMException("PreconStage: P must have one row per movable particle");
        precon = matrix;
    }
    void setReporter(MinimizationReporter* r) {
        reporter = r;
    }
    const std::vector<double>& getPositions() const {
        return x;
    }
    void leaveContext() {
        std::vector<Vec3> positions(numParticles);
        for (int i = 0; i < numParticles; i++)
            positions[i] = Vec3(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
        bridge.setContextPositions(positions);
    }

    int getNumMovable() const override {
        return (int) movable.size();
    }
    int getNumCoupled() const override {
        return (int) coupled.size();
    }
    bool evaluateStart(double& energy) override {
        at::Tensor start = bridge.currentPositions();
        if (!evaluate(std::vector<double>(start.data_ptr<double>(), start.data_ptr<double>() + 3 * numParticles),
                      energy))
            return false;
        x.swap(trialX);
        gradient.swap(trialGradient);
        return true;
    }
    std::string startFailure() const override {
        return "the force field returned a non-finite energy or forces at the start of the precon stage";
    }
    double gradientSquared() override {
        return dot(gradient, gradient);
    }
    void startDirection() override {
        d = gradient;
    }
    void firstLoop(int slot, double rho, int index) override {
        double a = rho * dot(s[slot], d);
        for (size_t i = 0; i < d.size(); i++)
            d[i] -= a * y[slot][i];
        alphas[index] = a;
    }
    void applyInversePreconditioner() override {
        precon.solve(d);
    }
    void scaleDirection(int slot, double numerator) override {
        std::vector<double> solved = y[slot];
        precon.solve(solved);
        double scale = numerator / std::max(dot(y[slot], solved), 1e-300);
        for (double& value : d)
            value *= scale;
    }
    void secondLoop(int slot, double rho, int index) override {
        double b = alphas[index] - rho * dot(y[slot], d);
        for (size_t i = 0; i < d.size(); i++)
            d[i] += s[slot][i] * b;
    }
    void negateDirection() override {
        for (double& value : d)
            value = -value;
    }
    void searchStart(double& slope, double& longest) override {
        slope = dot(gradient, d);
        longest = longestRow(d);
    }
    double trialSlope() override {
        return dot(trialGradient, d);
    }
    bool evaluateTrial(double alpha, double& energy) override {
        moved = x;
        for (size_t a = 0; a < movable.size(); a++)
            for (int c = 0; c < 3; c++)
                moved[3 * movable[a] + c] += alpha * d[3 * a + c];
        return evaluate(moved, energy);
    }
    void accept(int slot, double& sy, double& ss, double& yy) override {
        std::vector<double>& sk = s[slot];
        std::vector<double>& yk = y[slot];
        for (size_t a = 0; a < movable.size(); a++)
            for (int c = 0; c < 3; c++) {
                int i = 3 * movable[a] + c;
                sk[3 * a + c] = trialX[i] - x[i];
            }
        for (size_t i = 0; i < gradient.size(); i++)
            yk[i] = trialGradient[i] - gradient[i];
        sy = dot(sk, yk);
        ss = dot(sk, sk);
        yy = dot(yk, yk);
        x.swap(trialX);
        gradient.swap(trialGradient);
    }
    void setAnchor() override {
        anchor.resize(3 * coupled.size());
        for (size_t a = 0; a < coupled.size(); a++)
            for (int c = 0; c < 3; c++)
                anchor[3 * a + c] = x[3 * coupled[a] + c];
    }
    double anchorDistance() override {
        double farthest = 0.0;
        for (size_t a = 0; a < coupled.size(); a++) {
            double sum = 0.0;
            for (int c = 0; c < 3; c++) {
                double delta = x[3 * coupled[a] + c] - anchor[3 * a + c];
                sum += delta * delta;
            }
            farthest = std::max(farthest, std::sqrt(sum));
        }
        return farthest;
    }
    bool hasReporter() const override {
        return reporter != NULL;
    }
    bool report(int iteration, double energy, double rmsForce, int rebuilds) override {
        std::vector<double> gs(3 * numParticles, 0.0);
        for (size_t a = 0; a < movable.size(); a++)
            for (int c = 0; c < 3; c++)
                gs[3 * movable[a] + c] = gradient[3 * a + c];
        std::map<std::string, double> args;
        args["system energy"] = energy;
        args["rms force"] = rmsForce;
        args["rebuilds"] = rebuilds;
        return reporter->report(iteration, x, gs, args);
    }
private:
    /** Energy, the evaluated (constrained) positions into trialX and g into trialGradient; false if not
     *  finite. */
    bool evaluate(const std::vector<double>& positions, double& energy) {
        std::copy(positions.begin(), positions.end(), buffer.data_ptr<double>());
        try {
            bridge.evaluate(buffer, grad, energy);
        }
        catch (NonFiniteEnergyException&) {
            return false;
        }
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
    PreconMatrix precon;
    EnergyBridge bridge;
    MinimizationReporter* reporter;
    int numParticles;
    std::vector<int> movable, coupled;
    std::vector<double> x, gradient, anchor, trialX, trialGradient, d, moved, alphas;
    std::vector<std::vector<double> > s, y;  // the (s, y) pairs, one per slot
    at::Tensor buffer, grad;
};

} // namespace ReparamPlugin

PreconStage::PreconStage(Context& context, const PreconStageSettings& settings, const PreconMatrix& precon,
                         const std::vector<int>& coupled, double tolerance) {
    Clock::time_point start = Clock::now();
    ops.reset(new HostPreconOps(context, settings, precon, coupled));
    driver.reset(new PreconDriver(*ops, settings, tolerance, start));
}

PreconStage::~PreconStage() {
}

void PreconStage::setPreconditioner(const PreconMatrix& matrix) {
    ops->setPrecon(matrix);
    driver->rebuilt();
}

PreconStageOutcome PreconStage::run(int maxSteps, bool stopped, MinimizationReporter* reporter) {
    ops->setReporter(reporter);
    PreconStageOutcome outcome = driver->run(maxSteps, stopped);
    ops->setReporter(NULL);
    return outcome;
}

void PreconStage::leaveContext() {
    ops->leaveContext();
}

std::vector<double> PreconStage::getPositions() const {
    return ops->getPositions();
}

double PreconStage::getEnergy() const {
    return driver->getEnergy();
}

PreconStageOutcome ReparamPlugin::runPreconStage(Context& context, const PreconStageSettings& settings,
                                                 const PreconMatrix& precon, const std::vector<int>& coupled,
                                                 double tolerance, MinimizationReporter* reporter) {
    PreconStage stage(context, settings, precon, coupled, tolerance);
    PreconStageOutcome outcome = stage.run(settings.maxSteps, false, reporter);
    stage.leaveContext();
    return outcome;
}
