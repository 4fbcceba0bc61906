/* CommonDeviceAdamKernel: the device Adam stage on the common compute API (see CommonDeviceAdamKernel.h). */
#include "CommonDeviceAdamKernel.h"
#include "DeviceKernelArgs.h"
#include "MovableParticles.h"
#include "StageStopRules.h"
#include "StageClock.h"
#include "StopRequest.h"
#include "ReparamKernelSources.h"
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

CommonDeviceAdamKernel::CommonDeviceAdamKernel(const std::string& name, const Platform& platform, ComputeContext& cc,
                                               const std::string& platformLabel) :
        DeviceAdamKernel(name, platform), cc(cc), label(platformLabel), isSetup(false), mixedIsDouble(false),
        blockSize(0), numBlocks(0), numMovable(0), cpuForces(cc) {
}

void CommonDeviceAdamKernel::setup(const ReparamGenerator* generator) {
    mixedIsDouble = cc.getUseMixedPrecision() || cc.getUseDoublePrecision();
    int element = mixedIsDouble ? sizeof(double) : sizeof(float);
    int numAtoms = cc.getNumAtoms();
    blockSize = std::min(256, cc.getMaxThreadBlockSize());
    numBlocks = reductionBlocks(cc, numAtoms, blockSize);
    moment1.initialize(cc, 3 * numAtoms, element, "reparamAdamM");
    moment2.initialize(cc, 3 * numAtoms, element, "reparamAdamV");
    best.initialize(cc, 3 * numAtoms, element, "reparamAdamBest");
    candidate.initialize(cc, 3 * numAtoms, element, "reparamAdamCandidate");
    reduceBuffer.initialize(cc, 3 * numBlocks, element, "reparamAdamReduce");
    stats.initialize(cc, 3, element, "reparamAdamStats");
    numMovable = countMovable(cc.getContextImpl()->getSystem());
    std::map<std::string, std::string> defines;
    if (generator != NULL) {
        generatorKernels.reset(new DeviceGeneratorKernels(cc, *generator, mixedIsDouble));
        generatorKernels->addDefines(defines);
        int count = generatorKernels->getNumParameters();
        parameterMoment1.initialize(cc, count, element, "reparamParameterM");
        parameterMoment2.initialize(cc, count, element, "reparamParameterV");
    }
    else {  // the kernels take these arguments either way
        noRows.initialize<int>(cc, 1, "reparamNoRows");
        noGradient.initialize(cc, 1, element, "reparamNoGradient");
    }
    projection.initialize(cc, cc.getContextImpl()->getSystem(), defines);
    defines["THREAD_BLOCK_SIZE"] = cc.intToString(blockSize);
    defines["NUM_BLOCKS"] = cc.intToString(numBlocks);
    std::string source = std::string(DeviceConstraintProjection::kernelSource()) + ReparamKernelSources::adam;
    if (generator != NULL)
        source += ReparamKernelSources::generator;
    ComputeProgram program = compileDeviceProgram(cc, source, defines);
    projection.createKernels(program);
    createKernels(program);
    if (generator != NULL)
        generatorKernels->createKernels(program, projection.getForces(), candidate);
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
    ComputeArray& rows = generatorKernels ? generatorKernels->getRows() : noRows;
    ComputeArray& gradient = generatorKernels ? generatorKernels->getGradient() : noGradient;
    statsKernel->addArg(rows);
    finishKernel = program->createKernel("finishStats");
    finishKernel->addArg(reduceBuffer);
    finishKernel->addArg(stats);
    finishKernel->addArg(gradient);
    updateKernel = program->createKernel("adamUpdate");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getVelm(), &cc.getAtomIndexArray(),
                                  (ArrayInterface*) &moment1, (ArrayInterface*) &moment2, (ArrayInterface*) &stats,
                                  (ArrayInterface*) &candidate, (ArrayInterface*) &projection.getForces()})
        updateKernel->addArg(*array);
    for (int i = 0; i < 12; i++)
        updateKernel->addArg();  // lr, beta1, beta2, eps, biasCorrection1, biasCorrection2Sqrt, clipNorm, stiffness, box
    updateKernel->addArg(rows);
    if (generatorKernels) {
        parameterUpdateKernel = program->createKernel("parameterAdamUpdate");
        for (ComputeArray* array : {&generatorKernels->getParameters(), &parameterMoment1, &parameterMoment2,
                                    &generatorKernels->getGradient(), &stats})
            parameterUpdateKernel->addArg(*array);
        for (int i = 0; i < 7; i++)
            parameterUpdateKernel->addArg();  // lr, beta1, beta2, eps, biasCorrection1, biasCorrection2Sqrt, clipNorm
    }
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

void CommonDeviceAdamKernel::setRunArgs(double stiffness) {
    setMixedArg(statsKernel, 8, stiffness, mixedIsDouble);
    projection.setBoxArgs(statsKernel, 9);
    setMixedArg(updateKernel, 16, stiffness, mixedIsDouble);
    projection.setBoxArgs(updateKernel, 17);
    projection.setBoxArgs(restoreKernel, 4);
    if (generatorKernels)
        generatorKernels->setRunArgs(stiffness, projection);
}

void CommonDeviceAdamKernel::gradientStats(double& sumSquares, double& maxForce, double& rmsForce) {
    projection.project(projection.getForces(), false);
    if (generatorKernels)
        generatorKernels->computeGradient();
    statsKernel->execute(numBlocks * blockSize, blockSize);
    finishKernel->execute(blockSize, blockSize);
    std::vector<double> values;
    stats.download(values, true);
    sumSquares = values[0];
    maxForce = std::sqrt(values[1]);
    rmsForce = numMovable > 0 ? std::sqrt(values[2] / numMovable) : 0.0;
}

void CommonDeviceAdamKernel::adamUpdate(const AdamStageSettings& settings, int step) {
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // torch.optim.Adam's defaults, as AdamOptimizer
    double values[7] = {settings.lr, beta1, beta2, eps, 1.0 - std::pow(beta1, step),
                        std::sqrt(1.0 - std::pow(beta2, step)), settings.clipNorm};
    for (int i = 0; i < 7; i++)
        setMixedArg(updateKernel, 9 + i, values[i], mixedIsDouble);
    updateKernel->execute(cc.getNumAtoms());
    if (generatorKernels) {
        for (int i = 0; i < 7; i++)
            setMixedArg(parameterUpdateKernel, 5 + i, values[i], mixedIsDouble);
        parameterUpdateKernel->execute(generatorKernels->getNumParameters());
    }
}

void CommonDeviceAdamKernel::startAtGenerator(ContextImpl& context, const ReparamGenerator& generator) {
    const System& system = context.getSystem();
    std::vector<Vec3> positions;
    context.getPositions(positions);
    std::vector<double> x = generator.computePositions();
    for (int i = 0; i < system.getNumParticles(); i++)
        if (isMovable(system, i))
            positions[i] = Vec3(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
    context.setPositions(positions);
}

void CommonDeviceAdamKernel::finishGenerator(ContextImpl& context, ReparamGenerator& generator) {
    generatorKernels->copyParametersTo(generator);
    if (generator.hasSolvent()) {
        std::vector<Vec3> positions;
        context.getPositions(positions);
        generator.putSolventAt(positions);
    }
}

void CommonDeviceAdamKernel::prepare(ContextImpl& context, const AdamStageSettings& settings,
                                     const ReparamGenerator* generator) {
    if (isSetup && (generator != NULL || generatorKernels))
        throw OpenMMException("CommonDeviceAdamKernel: a generator stage needs a kernel of its own");
    if (!isSetup)
        setup(generator);
    cpuForces.startStage();
    setRunArgs(projection.hasConstraints() ? settings.constraintStiffness : 0.0);
    cc.clearBuffer(moment1);
    cc.clearBuffer(moment2);
    if (generator != NULL) {
        cc.clearBuffer(parameterMoment1);
        cc.clearBuffer(parameterMoment2);
        startAtGenerator(context, *generator);
    }
}

double CommonDeviceAdamKernel::evaluate(ContextImpl& context, double tol, int groups, double& maxForce,
                                        double& rmsForce) {
    if (generatorKernels)
        generatorKernels->computePositions();  // the generator's rows at G(theta)
    candidateKernel->execute(cc.getNumAtoms());  // the unconstrained candidate, for the spring
    context.applyConstraints(tol);  // constraints and virtual sites, on the device
    double energy = context.calcForcesAndEnergy(true, true, groups);
    double cpuMaxForce = 0.0;
    bool overflowed = projection.loadForces();
    if (overflowed)  // beyond the device's fixed-point range: the CPU platform's energy and forces instead
        energy = cpuForces.evaluate(context, groups, projection.getForces(), cpuMaxForce);
    double sumSquares;
    gradientStats(sumSquares, maxForce, rmsForce);
    if (overflowed)
        maxForce = cpuMaxForce;  // the device's raw forces wrapped around
    if (!std::isfinite(energy) || !std::isfinite(sumSquares))
        throw NonFiniteEnergyException("the energy or forces became NaN or infinite during the device Adam stage");
    return energy;
}

bool CommonDeviceAdamKernel::collapsed(ContextImpl& context, const AdamStageSettings& settings, double tol,
                                       int groups) {
    if (!(settings.collapseDistance > 0))
        return false;
    std::vector<Vec3> positions;  // rare (suspect steps only): the positions come to the host only here
    context.getPositions(positions);
    EnergyBridge bridge(context.getOwner(), tol, groups, settings.constraintStiffness);
    return bridge.hasCollapsedContact(positions, settings.collapseDistance);
}

AdamStageOutcome CommonDeviceAdamKernel::run(ContextImpl& context, const AdamStageSettings& settings,
                                             ReparamGenerator* generator) {
    ContextSelector selector(cc);
    Clock::time_point start = Clock::now();
    prepare(context, settings, generator);
    const Integrator& integrator = context.getIntegrator();
    double tol = integrator.getConstraintTolerance();
    int groups = integrator.getIntegrationForceGroups();
    StageStopRules rules(settings);
    AdamStageOutcome outcome;
    outcome.initialEnergy = NAN;
    int steps = 0;
    for (int i = 0; i < settings.maxSteps; i++) {
        if (const char* reason = stopBeforeStep(settings.timeLimit, start)) {
            outcome.stopReason = reason;
            break;
        }
        double maxForce, rmsForce, energy = evaluate(context, tol, groups, maxForce, rmsForce);
        steps++;
        if (std::isnan(outcome.initialEnergy))
            outcome.initialEnergy = energy;
        bool suspect = rules.suspect(maxForce);
        if (suspect && collapsed(context, settings, tol, groups)) {
            outcome.stopReason = verdictName(StepVerdict::Collapse);
            break;
        }
        outcome.energies.push_back(energy);
        outcome.times.push_back(secondsSince(start));
        bool improved = rules.improves(energy, suspect), convergedIsBest;
        bool converged = rules.converged(energy, rmsForce, convergedIsBest);  // may make this point the best
        if (improved || convergedIsBest)
            saveKernel->execute(cc.getNumAtoms());
        // The update comes before the verdict, as in the host stage: a generator stage hands back the parameters
        // after its last step (the coordinates are restored to the best point either way).
        adamUpdate(settings, i + 1);
        StepVerdict verdict = converged ? StepVerdict::Converged : rules.verdict();
        if (verdict != StepVerdict::Continue) {
            outcome.stopReason = verdictName(verdict);
            break;
        }
    }
    if (rules.hasBest()) {
        restoreKernel->execute(cc.getNumAtoms());
        context.applyConstraints(tol);
    }
    if (generator != NULL)
        finishGenerator(context, *generator);
    outcome.iterations = outcome.energyEvaluations = steps;
    outcome.bestEnergy = rules.hasBest() ? rules.getBestEnergy() : NAN;
    outcome.collapsed = outcome.stopReason == "collapse";
    outcome.cpuForceEvaluations = cpuForces.getNumEvaluations();
    outcome.wallTime = secondsSince(start);
    return outcome;
}
