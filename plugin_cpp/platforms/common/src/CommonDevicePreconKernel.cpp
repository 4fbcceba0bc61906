/* CommonDevicePreconKernel: the device precon stage on the common compute API (see CommonDevicePreconKernel.h). */
#include "CommonDevicePreconKernel.h"
#include "DeviceKernelArgs.h"
#include "MovableParticles.h"
#include "StageClock.h"
#include "ReparamKernelSources.h"
#include "NonFiniteEnergyException.h"
#include "openmm/Integrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/System.h"
#include "openmm/common/ContextSelector.h"
#include <algorithm>
#include <cmath>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

CommonDevicePreconKernel::CommonDevicePreconKernel(const std::string& name, const Platform& platform,
                                                   ComputeContext& cc) :
        DevicePreconKernel(name, platform), cc(cc), context(NULL), isSetup(false), mixedIsDouble(false),
        diagonalOnly(true), blockSize(0), numBlocks(0), numMovable(0), numCoupled(0), memory(0), groups(0), tol(0.0),
        squaredNorm(0.0), trialSquaredNorm(0.0), cpuForces(cc) {
}

namespace {
/** array with size elements: initialized on the first run, resized (contents dropped) where a later run needs
 *  another size; the kernels it is bound to keep it either way. */
void sizeArray(ComputeContext& cc, ComputeArray& array, size_t size, int element, const std::string& name) {
    if (!array.isInitialized())
        array.initialize(cc, size, element, name);
    else if (array.getSize() != size)
        array.resize(size);
}
} // namespace

void CommonDevicePreconKernel::setup(const PreconStageSettings& settings, const PreconMatrix& precon,
                                     const std::vector<int>& coupled) {
    // Once per Context (the kernel is kept for it, DeviceKernelCache.h): what depends on the System alone, the
    // program and its kernels. Every run: what depends on the settings, P and the coupled particles.
    cpuForces.startStage();
    int numAtoms = cc.getNumAtoms();
    int element;
    if (!isSetup) {
        mixedIsDouble = cc.getUseMixedPrecision() || cc.getUseDoublePrecision();
        element = mixedIsDouble ? sizeof(double) : sizeof(float);
        const System& system = cc.getContextImpl()->getSystem();
        std::vector<int> movable(numAtoms, -1);
        for (int i = 0; i < system.getNumParticles(); i++)
            if (isMovable(system, i))
                movable[i] = numMovable++;
        int coords = std::max(1, 3 * numMovable);
        blockSize = std::min(256, cc.getMaxThreadBlockSize());
        numBlocks = reductionBlocks(cc, std::max(numAtoms, 3 * numMovable), blockSize);
        movableIndex.initialize<int>(cc, numAtoms, "reparamPreconMovable");
        movableIndex.upload(movable);
        x.initialize(cc, 3 * numAtoms, element, "reparamPreconX");
        ComputeArray* vectors[] = {&gradient, &trialGradient, &directionArray, &solved};
        const char* names[] = {"reparamPreconG", "reparamPreconTrialG", "reparamPreconD", "reparamPreconSolved"};
        for (int k = 0; k < 4; k++)
            vectors[k]->initialize(cc, coords, element, names[k]);
        partial.initialize(cc, 3 * numBlocks, element, "reparamPreconPartial");
        stats.initialize(cc, 4, element, "reparamPreconStats");
    }
    element = mixedIsDouble ? sizeof(double) : sizeof(float);
    int coords = std::max(1, 3 * numMovable);
    memory = settings.memory;
    numCoupled = (int) coupled.size();
    sizeArray(cc, sMemory, (size_t) (memory + 1) * coords, element, "reparamPreconS");
    sizeArray(cc, yMemory, (size_t) (memory + 1) * coords, element, "reparamPreconY");
    sizeArray(cc, coefficients, 2 * (memory + 1) + 1, element, "reparamPreconCoefficients");
    sizeArray(cc, coupledIndex, std::max(1, numCoupled), sizeof(int), "reparamPreconCoupled");
    sizeArray(cc, anchor, 3 * std::max(1, numCoupled), element, "reparamPreconAnchor");
    if (numCoupled > 0)
        coupledIndex.upload(coupled);
    uploadPrecon(precon);
    if (isSetup) {
        anchorKernel->setArg(3, numCoupled);
        distanceKernel->setArg(3, numCoupled);
        return;
    }
    std::map<std::string, std::string> defines;
    projection.initialize(cc, cc.getContextImpl()->getSystem(), defines);
    defines["THREAD_BLOCK_SIZE"] = cc.intToString(blockSize);
    defines["NUM_BLOCKS"] = cc.intToString(numBlocks);
    defines["NUM_MOVABLE"] = cc.intToString(numMovable);
    defines["NUM_COORDS"] = cc.intToString(3 * numMovable);
    defines["TINY"] = mixedIsDouble ? "1e-300" : "1e-30";
    ComputeProgram program = compileDeviceProgram(cc, std::string(DeviceConstraintProjection::kernelSource()) +
                                                  ReparamKernelSources::precon, defines);
    projection.createKernels(program);
    createKernels(program);
    isSetup = true;
}

void CommonDevicePreconKernel::uploadPrecon(const PreconMatrix& precon) {
    diagonalOnly = precon.envelopeSize() == 0;
    int n = std::max(1, precon.size());
    std::vector<int> start(precon.getStart().begin(), precon.getStart().end());
    if (precon.getStart().back() > (long) 2147483647)
        throw OpenMMException("runDevicePreconStage: P's envelope is too large for the device solve");
    int element = mixedIsDouble ? sizeof(double) : sizeof(float);
    sizeArray(cc, envelopeFirst, n, sizeof(int), "reparamPreconFirst");
    sizeArray(cc, envelopeStart, n + 1, sizeof(int), "reparamPreconStart");
    sizeArray(cc, envelopeLower, std::max<long>(1, precon.envelopeSize()), element, "reparamPreconLower");
    sizeArray(cc, envelopeDiagonal, n, element, "reparamPreconDiagonal");
    if (precon.size() == 0)
        return;
    envelopeFirst.upload(precon.getFirst());
    envelopeStart.upload(start);
    if (!diagonalOnly)
        envelopeLower.upload(precon.getLower(), true);
    envelopeDiagonal.upload(precon.getDiagonal(), true);
}

void CommonDevicePreconKernel::createKernels(ComputeProgram& program) {
    ArrayInterface& correction = cc.getUseMixedPrecision() ? cc.getPosqCorrection() : cc.getPosq();
    finishStatsKernel = program->createKernel("finishReduction");
    finishCoefficientKernel = program->createKernel("finishReduction");
    for (ComputeKernel* kernel : {&finishStatsKernel, &finishCoefficientKernel}) {
        (*kernel)->addArg(partial);
        (*kernel)->addArg(kernel == &finishStatsKernel ? stats : coefficients);
        for (int i = 0; i < 3; i++)
            (*kernel)->addArg();  // offset, numSums, numMaxes
    }
    dotKernel = program->createKernel("dotPartial");
    for (int i = 0; i < 4; i++)
        dotKernel->addArg();  // a, aOffset, b, bOffset
    dotKernel->addArg(partial);
    trialGradientKernel = program->createKernel("trialGradient");
    for (ArrayInterface* array : {(ArrayInterface*) &projection.getForces(), &cc.getAtomIndexArray(),
                                  (ArrayInterface*) &movableIndex, (ArrayInterface*) &trialGradient,
                                  (ArrayInterface*) &partial})
        trialGradientKernel->addArg(*array);
    lineSearchKernel = program->createKernel("lineSearchStats");
    lineSearchKernel->addArg(gradient);
    lineSearchKernel->addArg(directionArray);
    lineSearchKernel->addArg(partial);
    trialSlopeKernel = program->createKernel("lineSearchStats");
    trialSlopeKernel->addArg(trialGradient);
    trialSlopeKernel->addArg(directionArray);
    trialSlopeKernel->addArg(partial);
    moveKernel = program->createKernel("moveTrial");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getAtomIndexArray(), (ArrayInterface*) &movableIndex,
                                  (ArrayInterface*) &x, (ArrayInterface*) &directionArray})
        moveKernel->addArg(*array);
    for (int i = 0; i < 5; i++)
        moveKernel->addArg();  // alpha, periodic, box vectors
    acceptKernel = program->createKernel("acceptTrial");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getAtomIndexArray(), (ArrayInterface*) &movableIndex,
                                  (ArrayInterface*) &x, (ArrayInterface*) &gradient, (ArrayInterface*) &trialGradient,
                                  (ArrayInterface*) &sMemory, (ArrayInterface*) &yMemory})
        acceptKernel->addArg(*array);
    acceptKernel->addArg();  // offset
    acceptKernel->addArg(partial);
    for (int i = 0; i < 4; i++)
        acceptKernel->addArg();  // periodic, box vectors
    acceptStartKernel = program->createKernel("acceptStart");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getAtomIndexArray(), (ArrayInterface*) &x,
                                  (ArrayInterface*) &gradient, (ArrayInterface*) &trialGradient})
        acceptStartKernel->addArg(*array);
    copyKernel = program->createKernel("copyVector");
    copyKernel->addArg(solved);
    copyKernel->addArg();  // src
    copyKernel->addArg();  // offset
    firstLoopKernel = program->createKernel("firstLoopUpdate");
    firstLoopKernel->addArg(directionArray);
    firstLoopKernel->addArg(yMemory);
    firstLoopKernel->addArg();  // offset
    firstLoopKernel->addArg(coefficients);
    firstLoopKernel->addArg();  // index
    firstLoopKernel->addArg();  // rho
    scaleKernel = program->createKernel("scaleDirection");
    scaleKernel->addArg(directionArray);
    scaleKernel->addArg(coefficients);
    scaleKernel->addArg();  // index
    scaleKernel->addArg();  // numerator
    secondLoopKernel = program->createKernel("secondLoopUpdate");
    secondLoopKernel->addArg(directionArray);
    secondLoopKernel->addArg(sMemory);
    secondLoopKernel->addArg();  // offset
    secondLoopKernel->addArg(coefficients);
    for (int i = 0; i < 3; i++)
        secondLoopKernel->addArg();  // alphaIndex, dotIndex, rho
    negateKernel = program->createKernel("negateVector");
    negateKernel->addArg(directionArray);
    envelopeKernel = program->createKernel("envelopeSolve");
    envelopeKernel->addArg();  // v
    for (ArrayInterface* array : {(ArrayInterface*) &envelopeFirst, (ArrayInterface*) &envelopeStart,
                                  (ArrayInterface*) &envelopeLower, (ArrayInterface*) &envelopeDiagonal})
        envelopeKernel->addArg(*array);
    diagonalKernel = program->createKernel("diagonalSolve");
    diagonalKernel->addArg();  // v
    diagonalKernel->addArg(envelopeDiagonal);
    anchorKernel = program->createKernel("setAnchor");
    anchorKernel->addArg(x);
    anchorKernel->addArg(coupledIndex);
    anchorKernel->addArg(anchor);
    anchorKernel->addArg(numCoupled);
    distanceKernel = program->createKernel("anchorDistance");
    distanceKernel->addArg(x);
    distanceKernel->addArg(coupledIndex);
    distanceKernel->addArg(anchor);
    distanceKernel->addArg(numCoupled);
    distanceKernel->addArg(partial);
    for (int i = 0; i < 4; i++)
        distanceKernel->addArg();  // periodic, box vectors
}

void CommonDevicePreconKernel::reduce(ComputeKernel& partialKernel, int numSums, int numMaxes, ComputeArray& results,
                                      int offset) {
    partialKernel->execute(numBlocks * blockSize, blockSize);
    ComputeKernel& finish = &results == &stats ? finishStatsKernel : finishCoefficientKernel;
    finish->setArg(2, offset);
    finish->setArg(3, numSums);
    finish->setArg(4, numMaxes);
    finish->execute(blockSize, blockSize);
}

void CommonDevicePreconKernel::dot(ComputeArray& a, int aOffset, ComputeArray& b, int bOffset, int index) {
    dotKernel->setArg(0, a);
    dotKernel->setArg(1, aOffset);
    dotKernel->setArg(2, b);
    dotKernel->setArg(3, bOffset);
    reduce(dotKernel, 1, 0, coefficients, index);
}

std::vector<double> CommonDevicePreconKernel::downloadStats(int count) {
    std::vector<double> values;
    stats.download(values, true);  // float -> double in single precision
    values.resize(count);
    return values;
}

bool CommonDevicePreconKernel::evaluate(double& e, double& norm) {
    context->applyConstraints(tol);  // constraints and virtual sites, on the device
    e = context->calcForcesAndEnergy(true, true, groups);
    if (projection.loadForces()) {  // beyond the device's fixed-point range: the CPU platform's energy and forces
        double maxForce;
        e = cpuForces.evaluate(*context, groups, projection.getForces(), maxForce);
    }
    projection.project(projection.getForces(), false);
    reduce(trialGradientKernel, 1, 0, stats, 0);
    norm = downloadStats(1)[0];
    return std::isfinite(e) && std::isfinite(norm);
}

void CommonDevicePreconKernel::solve(ComputeArray& v) {
    if (numMovable == 0)
        return;
    if (diagonalOnly) {
        diagonalKernel->setArg(0, v);
        diagonalKernel->execute(3 * numMovable);
    }
    else {
        envelopeKernel->setArg(0, v);
        envelopeKernel->execute(3, 1);
    }
}

bool CommonDevicePreconKernel::evaluateStart(double& e) {
    if (!evaluate(e, squaredNorm))
        return false;
    acceptStartKernel->execute(std::max(cc.getNumAtoms(), 3 * numMovable));
    return true;
}

std::string CommonDevicePreconKernel::startFailure() const {
    return "the force field returned a non-finite energy or forces at the start of the device precon stage";
}

void CommonDevicePreconKernel::startDirection() {
    gradient.copyTo(directionArray);  // q = g
}

void CommonDevicePreconKernel::firstLoop(int slot, double rho, int index) {
    int coords = 3 * numMovable;
    dot(sMemory, slot * coords, directionArray, 0, index);
    firstLoopKernel->setArg(2, slot * coords);
    firstLoopKernel->setArg(4, index);
    setMixedArg(firstLoopKernel, 5, rho, mixedIsDouble);
    firstLoopKernel->execute(coords);
}

void CommonDevicePreconKernel::scaleDirection(int slot, double numerator) {
    int coords = 3 * numMovable, gammaIndex = 2 * (memory + 1);
    copyKernel->setArg(1, yMemory);
    copyKernel->setArg(2, slot * coords);
    copyKernel->execute(coords);
    solve(solved);
    dot(yMemory, slot * coords, solved, 0, gammaIndex);
    scaleKernel->setArg(2, gammaIndex);
    setMixedArg(scaleKernel, 3, numerator, mixedIsDouble);
    scaleKernel->execute(coords);
}

void CommonDevicePreconKernel::secondLoop(int slot, double rho, int index) {
    int coords = 3 * numMovable;
    dot(yMemory, slot * coords, directionArray, 0, memory + 1 + index);
    secondLoopKernel->setArg(2, slot * coords);
    secondLoopKernel->setArg(4, index);
    secondLoopKernel->setArg(5, memory + 1 + index);
    setMixedArg(secondLoopKernel, 6, rho, mixedIsDouble);
    secondLoopKernel->execute(coords);
}

void CommonDevicePreconKernel::negateDirection() {
    negateKernel->execute(3 * numMovable);
}

void CommonDevicePreconKernel::searchStart(double& slope, double& longest) {
    reduce(lineSearchKernel, 1, 1, stats, 0);
    std::vector<double> values = downloadStats(2);
    slope = values[0];
    longest = std::sqrt(values[1]);
}

double CommonDevicePreconKernel::trialSlope() {
    reduce(trialSlopeKernel, 1, 1, stats, 0);
    return downloadStats(1)[0];
}

void CommonDevicePreconKernel::moveTo(double alpha) {
    setMixedArg(moveKernel, 6, alpha, mixedIsDouble);
    moveKernel->execute(cc.getNumAtoms());
}

bool CommonDevicePreconKernel::evaluateTrial(double alpha, double& e) {
    moveTo(alpha);
    return evaluate(e, trialSquaredNorm);
}

void CommonDevicePreconKernel::accept(int slot, double& sy, double& ss, double& yy) {
    acceptKernel->setArg(9, slot * 3 * numMovable);
    reduce(acceptKernel, 3, 0, stats, 0);
    std::vector<double> values = downloadStats(3);
    sy = values[0];
    ss = values[1];
    yy = values[2];
    squaredNorm = trialSquaredNorm;
}

void CommonDevicePreconKernel::setAnchor() {
    if (numCoupled > 0)
        anchorKernel->execute(numCoupled);
}

double CommonDevicePreconKernel::anchorDistance() {
    reduce(distanceKernel, 0, 1, stats, 0);
    return std::sqrt(downloadStats(1)[0]);
}

PreconStageOutcome CommonDevicePreconKernel::run(ContextImpl& context, const PreconStageSettings& settings,
                                                 const PreconMatrix& precon, const std::vector<int>& coupled,
                                                 double tolerance) {
    ContextSelector selector(cc);
    Clock::time_point start = Clock::now();
    setup(settings, precon, coupled);
    this->context = &context;
    tol = context.getIntegrator().getConstraintTolerance();
    groups = context.getIntegrator().getIntegrationForceGroups();
    projection.setBoxArgs(moveKernel, 7);
    projection.setBoxArgs(acceptKernel, 11);
    projection.setBoxArgs(distanceKernel, 5);
    PreconDriver driver(*this, settings, tolerance, start);  // evaluates the start
    PreconStageOutcome outcome = driver.run(settings.maxSteps, false);
    moveTo(0.0);  // the iterate back into posq (a rejected trial may be there)
    outcome.cpuForceEvaluations = cpuForces.getNumEvaluations();
    return outcome;
}
