/* CommonDeviceAdamKernel: the device Adam stage on the common compute API (see CommonDeviceAdamKernel.h). */
#include "CommonDeviceAdamKernel.h"
#include "DeviceAdamKernelSource.h"
#include "EnergyBridge.h"
#include "NonFiniteEnergyException.h"
#include "openmm/Context.h"
#include "openmm/Integrator.h"
#include "openmm/common/ContextSelector.h"
#include "openmm/common/IntegrationUtilities.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {
typedef std::chrono::steady_clock Clock;
double secondsSince(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

/** The stop rules of StageTracker (AdamStepper.h) on the energies and largest forces alone. */
class ScalarTracker {
public:
    explicit ScalarTracker(const AdamStageSettings& s) : s(s), haveBest(false), best(INFINITY), calmest(INFINITY),
            largestDrop(0.0), waited(0) {}
    bool suspect(double maxForce) {
        calmest = std::min(calmest, maxForce);
        return maxForce > s.spikeFactor * calmest;
    }
    /** Whether this (non-suspect) energy is the new best. */
    bool improves(double energy, bool isSuspect) {
        bool better = !isSuspect && (!haveBest || energy < best - s.relTol * std::fabs(best));
        if (better) {
            best = energy;
            haveBest = true;
            waited = 0;
        }
        else
            waited++;
        double previous = lowest.empty() ? INFINITY : lowest.back();
        lowest.push_back(isSuspect ? previous : std::min(previous, energy));
        return better;
    }
    const char* verdict() {
        int window = s.progressWindow;
        if (window > 0 && (int) lowest.size() > window) {
            double before = lowest[lowest.size() - window - 1];
            if (std::isfinite(before)) {
                double drop = before - lowest.back();
                largestDrop = std::max(largestDrop, drop);
                if (drop < s.progressFraction * largestDrop)
                    return "stalled";
            }
        }
        return waited >= s.patience ? "patience" : "";
    }
    const AdamStageSettings& s;
    bool haveBest;
    double best, calmest, largestDrop;
    int waited;
    std::vector<double> lowest;
};
} // namespace

CommonDeviceAdamKernel::CommonDeviceAdamKernel(const std::string& name, const Platform& platform, ComputeContext& cc,
                                               const std::string& platformLabel) :
        DeviceAdamKernel(name, platform), cc(cc), label(platformLabel), isSetup(false), mixedIsDouble(false),
        blockSize(0), numBlocks(0) {
}

void CommonDeviceAdamKernel::setup() {
    mixedIsDouble = cc.getUseMixedPrecision() || cc.getUseDoublePrecision();
    int element = mixedIsDouble ? sizeof(double) : sizeof(float);
    int numAtoms = cc.getNumAtoms();
    blockSize = std::min(256, cc.getMaxThreadBlockSize());
    numBlocks = std::max(1, std::min(64, (numAtoms + blockSize - 1) / blockSize));
    moment1.initialize(cc, 3 * numAtoms, element, "reparamAdamM");
    moment2.initialize(cc, 3 * numAtoms, element, "reparamAdamV");
    best.initialize(cc, 3 * numAtoms, element, "reparamAdamBest");
    candidate.initialize(cc, 3 * numAtoms, element, "reparamAdamCandidate");
    reduceBuffer.initialize(cc, 2 * numBlocks, element, "reparamAdamReduce");
    stats.initialize(cc, 2, element, "reparamAdamStats");
    std::map<std::string, std::string> defines;
    defines["THREAD_BLOCK_SIZE"] = cc.intToString(blockSize);
    defines["NUM_BLOCKS"] = cc.intToString(numBlocks);
    defines["NUM_ATOMS"] = cc.intToString(numAtoms);
    defines["PADDED_NUM_ATOMS"] = cc.intToString(cc.getPaddedNumAtoms());
    ComputeProgram program = cc.compileProgram(deviceAdamKernelSource, defines);
    ArrayInterface& correction = cc.getUseMixedPrecision() ? cc.getPosqCorrection() : cc.getPosq();
    velmBackup.initialize(cc, cc.getVelm().getSize(), cc.getVelm().getElementSize(), "reparamVelmBackup");
    projectKernel = program->createKernel("forcesToVelocities");
    projectKernel->addArg(cc.getVelm());
    projectKernel->addArg(cc.getLongForceBuffer());
    statsKernel = program->createKernel("gradientStats");
    statsKernel->addArg(cc.getVelm());
    statsKernel->addArg(reduceBuffer);
    finishKernel = program->createKernel("finishStats");
    finishKernel->addArg(reduceBuffer);
    finishKernel->addArg(stats);
    updateKernel = program->createKernel("adamUpdate");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getVelm(), &cc.getAtomIndexArray(), (ArrayInterface*) &moment1, (ArrayInterface*) &moment2,
                                  (ArrayInterface*) &stats, (ArrayInterface*) &candidate})
        updateKernel->addArg(*array);
    for (int i = 0; i < 8; i++)
        updateKernel->addArg();  // lr, beta1, beta2, eps, biasCorrection1, biasCorrection2Sqrt, clipNorm, stiffness
    saveKernel = program->createKernel("saveBest");
    restoreKernel = program->createKernel("restoreBest");
    candidateKernel = program->createKernel("saveBest");
    for (ComputeKernel* kernel : {&saveKernel, &restoreKernel, &candidateKernel}) {
        (*kernel)->addArg(cc.getPosq());
        (*kernel)->addArg(correction);
        (*kernel)->addArg(cc.getAtomIndexArray());
        (*kernel)->addArg(kernel == &candidateKernel ? candidate : best);
    }
    isSetup = true;
}

void CommonDeviceAdamKernel::gradientStats(double& sumSquares, double& maxForce, double tol) {
    projectKernel->execute(cc.getNumAtoms());
    cc.getIntegrationUtilities().applyVelocityConstraints(tol);
    statsKernel->execute(numBlocks * blockSize, blockSize);
    finishKernel->execute(blockSize, blockSize);
    double values[2];
    if (mixedIsDouble)
        stats.download(values);
    else {
        float single[2];
        stats.download(single);
        values[0] = single[0];
        values[1] = single[1];
    }
    sumSquares = values[0];
    maxForce = std::sqrt(values[1]);
}

void CommonDeviceAdamKernel::adamUpdate(const AdamStageSettings& settings, int step) {
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // torch.optim.Adam's defaults, as AdamOptimizer
    double stiffness = cc.getContextImpl()->getSystem().getNumConstraints() > 0 ? settings.constraintStiffness : 0.0;
    double values[8] = {settings.lr, beta1, beta2, eps, 1.0 - std::pow(beta1, step),
                        std::sqrt(1.0 - std::pow(beta2, step)), settings.clipNorm, stiffness};
    for (int i = 0; i < 8; i++) {
        if (mixedIsDouble)
            updateKernel->setArg(8 + i, values[i]);
        else
            updateKernel->setArg(8 + i, (float) values[i]);
    }
    updateKernel->execute(cc.getNumAtoms());
}

AdamStageOutcome CommonDeviceAdamKernel::run(ContextImpl& context, const AdamStageSettings& settings) {
    ContextSelector selector(cc);
    Clock::time_point start = Clock::now();
    if (!isSetup)
        setup();
    const Integrator& integrator = context.getIntegrator();
    double tol = integrator.getConstraintTolerance();
    int groups = integrator.getIntegrationForceGroups();
    cc.getVelm().copyTo(velmBackup);  // velm holds the projected forces while stepping
    cc.clearBuffer(moment1);
    cc.clearBuffer(moment2);
    ScalarTracker tracker(settings);
    AdamStageOutcome outcome;
    outcome.initialEnergy = NAN;
    int steps = 0;
    try {
    for (int i = 0; i < settings.maxSteps; i++) {
        if (settings.timeLimit >= 0 && secondsSince(start) >= settings.timeLimit) {
            outcome.stopReason = "deadline";
            break;
        }
        candidateKernel->execute(cc.getNumAtoms());  // the unconstrained candidate, for the spring
        context.applyConstraints(tol);  // constraints and virtual sites, on the device
        double energy = context.calcForcesAndEnergy(true, true, groups);
        double sumSquares, maxForce;
        gradientStats(sumSquares, maxForce, tol);
        if (!std::isfinite(energy) || !std::isfinite(sumSquares))
            throw NonFiniteEnergyException("the energy or forces became NaN or infinite during the device Adam stage");
        steps++;
        if (std::isnan(outcome.initialEnergy))
            outcome.initialEnergy = energy;
        bool suspect = tracker.suspect(maxForce);
        if (suspect && settings.collapseDistance > 0) {  // rare: the positions come to the host only here
            std::vector<Vec3> positions;
            context.getPositions(positions);
            EnergyBridge bridge(context.getOwner(), tol, groups, settings.constraintStiffness);
            if (bridge.hasCollapsedContact(positions, settings.collapseDistance)) {
                outcome.stopReason = "collapse";
                break;
            }
        }
        outcome.energies.push_back(energy);
        outcome.times.push_back(secondsSince(start));
        if (tracker.improves(energy, suspect))
            saveKernel->execute(cc.getNumAtoms());
        std::string verdict = tracker.verdict();
        if (!verdict.empty()) {
            outcome.stopReason = verdict;
            break;
        }
        adamUpdate(settings, i + 1);
    }
    }
    catch (...) {  // the Context keeps its velocities whatever happens
        velmBackup.copyTo(cc.getVelm());
        throw;
    }
    velmBackup.copyTo(cc.getVelm());
    if (tracker.haveBest) {
        restoreKernel->execute(cc.getNumAtoms());
        context.applyConstraints(tol);
    }
    outcome.iterations = outcome.energyEvaluations = steps;
    outcome.bestEnergy = tracker.haveBest ? tracker.best : NAN;
    outcome.collapsed = outcome.stopReason == "collapse";
    outcome.wallTime = secondsSince(start);
    return outcome;
}
