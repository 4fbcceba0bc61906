/* CommonDeviceAdamKernel: the device Adam stage on the common compute API, the device AdamStageOps under
 * runAdamDriver (see CommonDeviceAdamKernel.h). */
#include "CommonDeviceAdamKernel.h"
#include "DeviceKernelArgs.h"
#include "MovableParticles.h"
#include "StageClock.h"
#include "ReparamKernelSources.h"
#include "EnergyBridge.h"
#include "NonFiniteEnergyException.h"
#include "openmm/Context.h"
#include "openmm/Integrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/common/ContextSelector.h"
#include <algorithm>
#include <cmath>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

CommonDeviceAdamKernel::CommonDeviceAdamKernel(const std::string& name, const Platform& platform, ComputeContext& cc,
                                               const std::string& platformLabel) :
        DeviceAdamKernel(name, platform), cc(cc), label(platformLabel), isSetup(false), mixedIsDouble(false),
        runContext(NULL), runSettings(NULL), runGenerator(NULL), tol(0.0), groups(0), blockSize(0), numBlocks(0), numMovable(0), cpuForces(cc) {
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

void CommonDeviceAdamKernel::update(int step) {
    const AdamStageSettings& settings = *runSettings;
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

void CommonDeviceAdamKernel::prepare(ContextImpl& context, const AdamStageSettings& settings,
                                     const ReparamGenerator* generator) {
    if (isSetup && (generator != NULL) != (generatorKernels != nullptr))
        throw OpenMMException("CommonDeviceAdamKernel: a generator stage and a coordinate stage need kernels of "
                              "their own");
    if (!isSetup)
        setup(generator);
    else if (generator != NULL)
        generatorKernels->load(*generator);  // a kept kernel, compiled for the same shapes
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

AdamEvaluation CommonDeviceAdamKernel::evaluate() {
    ContextImpl& context = *runContext;
    if (generatorKernels)
        generatorKernels->computePositions();  // the generator's rows at G(theta)
    candidateKernel->execute(cc.getNumAtoms());  // the unconstrained candidate, for the spring
    context.applyConstraints(tol);  // constraints and virtual sites, on the device
    AdamEvaluation result;
    result.energy = context.calcForcesAndEnergy(true, true, groups);
    double cpuMaxForce = 0.0;
    bool overflowed = projection.loadForces();
    if (overflowed)  // beyond the device's fixed-point range: the CPU platform's energy and forces instead
        result.energy = cpuForces.evaluate(context, groups, projection.getForces(), cpuMaxForce);
    double sumSquares;
    gradientStats(sumSquares, result.maxForce, result.rmsForce);
    if (overflowed)
        result.maxForce = cpuMaxForce;  // the device's raw forces wrapped around
    if (!std::isfinite(result.energy) || !std::isfinite(sumSquares))
        throw NonFiniteEnergyException("the energy or forces became NaN or infinite during the device Adam stage");
    return result;
}

bool CommonDeviceAdamKernel::collapsedContact() {
    const AdamStageSettings& settings = *runSettings;
    if (!(settings.collapseDistance > 0))
        return false;
    std::vector<Vec3> positions;  // rare (suspect steps only): the positions come to the host only here
    runContext->getPositions(positions);
    EnergyBridge bridge(runContext->getOwner(), tol, groups, settings.constraintStiffness);
    return bridge.hasCollapsedContact(positions, settings.collapseDistance);
}

void CommonDeviceAdamKernel::keepBest() {
    saveKernel->execute(cc.getNumAtoms());
}

void CommonDeviceAdamKernel::finish(bool haveBest) {
    if (haveBest) {
        restoreKernel->execute(cc.getNumAtoms());
        runContext->applyConstraints(tol);
    }
    if (runGenerator == NULL)
        return;
    generatorKernels->copyParametersTo(*runGenerator);
    if (runGenerator->hasSolvent()) {
        std::vector<Vec3> positions;
        runContext->getPositions(positions);
        runGenerator->putSolventAt(positions);
    }
}

AdamStageOutcome CommonDeviceAdamKernel::run(ContextImpl& context, const AdamStageSettings& settings,
                                             ReparamGenerator* generator) {
    ContextSelector selector(cc);
    Clock::time_point start = Clock::now();
    prepare(context, settings, generator);
    const Integrator& integrator = context.getIntegrator();
    runContext = &context;
    runSettings = &settings;
    runGenerator = generator;
    tol = integrator.getConstraintTolerance();
    groups = integrator.getIntegrationForceGroups();
    AdamStageOutcome outcome = runAdamDriver(*this, settings, start);
    outcome.cpuForceEvaluations = cpuForces.getNumEvaluations();
    runContext = NULL;
    runSettings = NULL;
    runGenerator = NULL;
    return outcome;
}
