/* CommonDeviceAdamKernel: the device Adam stage on the common compute API (see CommonDeviceAdamKernel.h). */
#include "CommonDeviceAdamKernel.h"
#include "DeviceKernelArgs.h"
#include "StageClock.h"
#include "DeviceAdamKernelSource.h"
#include "EnergyBridge.h"
#include "NonFiniteEnergyException.h"
#include "openmm/Context.h"
#include "openmm/Integrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/common/ContextSelector.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {

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
        hasModes(false), blockSize(0), numBlocks(0), numModes(0) {
}

void CommonDeviceAdamKernel::uploadMixed(ComputeArray& array, const std::vector<double>& values,
                                         const std::string& name) {
    int element = mixedIsDouble ? sizeof(double) : sizeof(float);
    array.initialize(cc, std::max<size_t>(1, values.size()), element, name);
    if (values.empty())
        return;
    if (mixedIsDouble)
        array.upload(values);
    else
        array.upload(std::vector<float>(values.begin(), values.end()));
}

void CommonDeviceAdamKernel::uploadModes(const DeviceLinearModes* linear) {
    hasModes = linear != NULL;
    numModes = hasModes ? linear->numModes : 0;
    std::vector<int> rows(hasModes ? cc.getNumAtoms() : 1, -1);
    if (hasModes)
        for (size_t r = 0; r < linear->atoms.size(); r++)
            rows[linear->atoms[r]] = (int) r;
    modeRow.initialize<int>(cc, rows.size(), "reparamModeRow");
    modeRow.upload(rows);
    std::vector<double> none, zeros(3 * std::max(1, numModes), 0.0);
    uploadMixed(modes, hasModes ? linear->modes : none, "reparamModes");
    uploadMixed(modeX0, hasModes ? linear->x0 : none, "reparamModeX0");
    uploadMixed(z, hasModes ? linear->z : none, "reparamModeZ");
    uploadMixed(zMoment1, zeros, "reparamModeM");
    uploadMixed(zMoment2, zeros, "reparamModeV");
    uploadMixed(dz, zeros, "reparamModeGradient");
}

void CommonDeviceAdamKernel::setup(const DeviceLinearModes* linear) {
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
    uploadModes(linear);
    std::map<std::string, std::string> defines;
    projection.initialize(cc, cc.getContextImpl()->getSystem(), defines);
    defines["THREAD_BLOCK_SIZE"] = cc.intToString(blockSize);
    defines["NUM_BLOCKS"] = cc.intToString(numBlocks);
    if (hasModes) {
        defines["HAS_MODES"] = "1";
        defines["NUM_MODES"] = cc.intToString(numModes);
    }
    ComputeProgram program = cc.compileProgram(std::string(DeviceConstraintProjection::kernelSource()) +
                                               deviceAdamKernelSource, defines);
    projection.createKernels(program);
    createKernels(program);
    if (hasModes)
        createModeKernels(program);
    isSetup = true;
}

void CommonDeviceAdamKernel::createKernels(ComputeProgram& program) {
    ArrayInterface& correction = cc.getUseMixedPrecision() ? cc.getPosqCorrection() : cc.getPosq();
    statsKernel = program->createKernel("gradientStats");
    for (ArrayInterface* array : {(ArrayInterface*) &projection.getForces(), &cc.getLongForceBuffer(), &cc.getVelm(),
                                  &cc.getPosq(), &correction, &cc.getAtomIndexArray(), (ArrayInterface*) &candidate,
                                  (ArrayInterface*) &reduceBuffer})
        statsKernel->addArg(*array);
    for (int i = 0; i < 5; i++)
        statsKernel->addArg();  // stiffness, periodic, box vectors
    statsKernel->addArg(modeRow);
    finishKernel = program->createKernel("finishStats");
    finishKernel->addArg(reduceBuffer);
    finishKernel->addArg(stats);
    finishKernel->addArg(dz);
    updateKernel = program->createKernel("adamUpdate");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getVelm(), &cc.getAtomIndexArray(),
                                  (ArrayInterface*) &moment1, (ArrayInterface*) &moment2, (ArrayInterface*) &stats,
                                  (ArrayInterface*) &candidate, (ArrayInterface*) &projection.getForces()})
        updateKernel->addArg(*array);
    for (int i = 0; i < 12; i++)
        updateKernel->addArg();  // lr, beta1, beta2, eps, biasCorrection1, biasCorrection2Sqrt, clipNorm, stiffness, box
    updateKernel->addArg(modeRow);
    saveKernel = program->createKernel("saveBest");
    restoreKernel = program->createKernel("restoreBest");
    candidateKernel = program->createKernel("saveBest");
    for (ComputeKernel* kernel : {&saveKernel, &restoreKernel, &candidateKernel}) {
        (*kernel)->addArg(cc.getPosq());
        (*kernel)->addArg(correction);
        (*kernel)->addArg(cc.getAtomIndexArray());
        (*kernel)->addArg(kernel == &candidateKernel ? candidate : best);
    }
    for (int i = 0; i < 4; i++)
        restoreKernel->addArg();  // periodic, box vectors
}

void CommonDeviceAdamKernel::createModeKernels(ComputeProgram& program) {
    ArrayInterface& correction = cc.getUseMixedPrecision() ? cc.getPosqCorrection() : cc.getPosq();
    positionsKernel = program->createKernel("linearPositions");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getVelm(), &cc.getAtomIndexArray(),
                                  (ArrayInterface*) &modeRow, (ArrayInterface*) &modes, (ArrayInterface*) &modeX0,
                                  (ArrayInterface*) &z})
        positionsKernel->addArg(*array);
    for (int i = 0; i < 4; i++)
        positionsKernel->addArg();  // periodic, box vectors
    modeGradientKernel = program->createKernel("modeGradient");
    for (ArrayInterface* array : {(ArrayInterface*) &projection.getForces(), &cc.getPosq(), &correction,
                                  &cc.getVelm(), &cc.getAtomIndexArray(), (ArrayInterface*) &candidate,
                                  (ArrayInterface*) &modeRow, (ArrayInterface*) &modes, (ArrayInterface*) &dz})
        modeGradientKernel->addArg(*array);
    for (int i = 0; i < 5; i++)
        modeGradientKernel->addArg();  // stiffness, periodic, box vectors
    modeUpdateKernel = program->createKernel("modeAdamUpdate");
    for (ComputeArray* array : {&z, &zMoment1, &zMoment2, &dz, &stats})
        modeUpdateKernel->addArg(*array);
    for (int i = 0; i < 7; i++)
        modeUpdateKernel->addArg();  // lr, beta1, beta2, eps, biasCorrection1, biasCorrection2Sqrt, clipNorm
}

void CommonDeviceAdamKernel::setRunArgs(double stiffness) {
    setMixedArg(statsKernel, 8, stiffness, mixedIsDouble);
    projection.setBoxArgs(statsKernel, 9);
    setMixedArg(updateKernel, 16, stiffness, mixedIsDouble);
    projection.setBoxArgs(updateKernel, 17);
    projection.setBoxArgs(restoreKernel, 4);
    if (hasModes) {
        projection.setBoxArgs(positionsKernel, 8);
        setMixedArg(modeGradientKernel, 9, stiffness, mixedIsDouble);
        projection.setBoxArgs(modeGradientKernel, 10);
    }
}

void CommonDeviceAdamKernel::gradientStats(double& sumSquares, double& maxForce) {
    projection.loadForces();
    projection.project(projection.getForces(), false);
    if (hasModes)
        modeGradientKernel->execute(std::min(numModes, 64) * blockSize, blockSize);
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
    double values[7] = {settings.lr, beta1, beta2, eps, 1.0 - std::pow(beta1, step),
                        std::sqrt(1.0 - std::pow(beta2, step)), settings.clipNorm};
    for (int i = 0; i < 7; i++)
        setMixedArg(updateKernel, 9 + i, values[i], mixedIsDouble);
    updateKernel->execute(cc.getNumAtoms());
    if (hasModes) {
        for (int i = 0; i < 7; i++)
            setMixedArg(modeUpdateKernel, 5 + i, values[i], mixedIsDouble);
        modeUpdateKernel->execute(3 * numModes);
    }
}

AdamStageOutcome CommonDeviceAdamKernel::run(ContextImpl& context, const AdamStageSettings& settings,
                                             DeviceLinearModes* linear) {
    ContextSelector selector(cc);
    Clock::time_point start = Clock::now();
    if (isSetup && (linear != NULL || hasModes))
        throw OpenMMException("CommonDeviceAdamKernel: a linear stage needs a kernel of its own");
    if (!isSetup)
        setup(linear);
    const Integrator& integrator = context.getIntegrator();
    double tol = integrator.getConstraintTolerance();
    int groups = integrator.getIntegrationForceGroups();
    setRunArgs(projection.hasConstraints() ? settings.constraintStiffness : 0.0);
    cc.clearBuffer(moment1);
    cc.clearBuffer(moment2);
    ScalarTracker tracker(settings);
    AdamStageOutcome outcome;
    outcome.initialEnergy = NAN;
    int steps = 0;
    for (int i = 0; i < settings.maxSteps; i++) {
        if (settings.timeLimit >= 0 && secondsSince(start) >= settings.timeLimit) {
            outcome.stopReason = "deadline";
            break;
        }
        if (hasModes)
            positionsKernel->execute(cc.getNumAtoms());  // the rows of the modes at X0 + V z
        candidateKernel->execute(cc.getNumAtoms());  // the unconstrained candidate, for the spring
        context.applyConstraints(tol);  // constraints and virtual sites, on the device
        double energy = context.calcForcesAndEnergy(true, true, groups);
        double sumSquares, maxForce;
        gradientStats(sumSquares, maxForce);
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
        // The update comes before the verdict, as in the host stage: a linear stage hands back the parameters
        // after its last step (the coordinates are restored to the best point either way).
        adamUpdate(settings, i + 1);
        std::string verdict = tracker.verdict();
        if (!verdict.empty()) {
            outcome.stopReason = verdict;
            break;
        }
    }
    if (tracker.haveBest) {
        restoreKernel->execute(cc.getNumAtoms());
        context.applyConstraints(tol);
    }
    if (hasModes) {  // the last parameters, as the host stage leaves its generator
        if (mixedIsDouble)
            z.download(linear->z);
        else {
            std::vector<float> values;
            z.download(values);
            linear->z.assign(values.begin(), values.end());
        }
    }
    outcome.iterations = outcome.energyEvaluations = steps;
    outcome.bestEnergy = tracker.haveBest ? tracker.best : NAN;
    outcome.collapsed = outcome.stopReason == "collapse";
    outcome.wallTime = secondsSince(start);
    return outcome;
}
