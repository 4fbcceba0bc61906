#ifndef OPENMM_REPARAM_INTEGRATOR_H_
#define OPENMM_REPARAM_INTEGRATOR_H_

/**
 * ReparamIntegrator: an OpenMM Integrator whose step() is one reparametrized optimization step.
 *
 * It owns a ReparamGenerator (weights, latent, slow modes) and its Adam state. step(n) performs n times:
 * X = G(theta) -> set positions -> energy and forces from the Context -> backpropagate -F through G (libtorch
 * autograd) -> clip the gradient norm -> Adam update. It works on every platform (it only uses the Context's
 * own force kernels) and inside a CompoundIntegrator, so one Context can be minimized and then run MD.
 * Velocities are left untouched; time does not advance (step size 0), the step count does.
 */

#include "ReparamGenerator.h"
#include "openmm/Integrator.h"
#include "openmm/Vec3.h"
#include <memory>
#include <string>
#include <vector>

namespace ReparamPlugin {

class EnergyBridge;
class AdamOptimizer;

class ReparamIntegrator : public OpenMM::Integrator {
public:
    /** @param generator the generator to optimize (copied), @param learningRate Adam learning rate */
    explicit ReparamIntegrator(const ReparamGenerator& generator, double learningRate = 1e-3);
    ~ReparamIntegrator();
    /** Perform n reparametrized optimization steps. */
    void step(int steps);
    double getLearningRate() const { return learningRate; }
    void setLearningRate(double lr);
    double getClipNorm() const { return clipNorm; }
    void setClipNorm(double norm) { clipNorm = norm; }
    double getConstraintStiffness() const { return constraintStiffness; }
    void setConstraintStiffness(double k) { constraintStiffness = k; }
    double getRelativeTolerance() const { return relTol; }
    void setRelativeTolerance(double tol) { relTol = tol; }
    /** libtorch intra-op threads during step() (default 1; <= 0 leaves torch's setting alone). */
    int getTorchThreads() const { return torchThreads; }
    void setTorchThreads(int threads) { torchThreads = threads; }
    /** Loss (energy + constraint penalty) and potential energy of the last step (NaN before the first). */
    double getLastLoss() const { return lastLoss; }
    double getLastEnergy() const { return lastEnergy; }
    /** Lowest potential energy so far (judged as the stages do: relative improvement relTol) and its loss. */
    double getBestLoss() const { return bestLoss; }
    double getBestEnergy() const { return bestEnergy; }
    /** Consecutive steps without improvement (energy < best - relTol*|best|), for early stopping by the caller. */
    int getStepsSinceImprovement() const { return stepsSinceImprovement; }
    /** Steps performed since creation (or since reset()). */
    int getNumStepsTaken() const { return stepsTaken; }
    /** Put the best positions found so far into the Context. */
    void applyBestPositions();
    /** Forget the Adam state, best loss and start positions (the generator keeps its current weights). */
    void reset();
    /** The generator with its current (trained) weights. */
    const ReparamGenerator& getGenerator() const { return *generator; }
protected:
    void initialize(OpenMM::ContextImpl& context);
    void cleanup();
    std::vector<std::string> getKernelNames();
    double computeKineticEnergy();
    bool kineticEnergyRequiresForce() const { return false; }
private:
    std::unique_ptr<ReparamGenerator> generator;
    std::unique_ptr<EnergyBridge> bridge;
    std::unique_ptr<AdamOptimizer> adam;
    OpenMM::ContextImpl* contextImpl;
    double learningRate, clipNorm, constraintStiffness, relTol;
    double lastLoss, lastEnergy, bestLoss, bestEnergy;
    int stepsSinceImprovement, stepsTaken, torchThreads;
    bool started;
    std::vector<OpenMM::Vec3> bestPositions;
};

} // namespace ReparamPlugin

#endif
