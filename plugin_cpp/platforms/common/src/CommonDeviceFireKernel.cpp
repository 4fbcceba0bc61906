/* CommonDeviceFireKernel: the device FIRE stage on the common compute API (see CommonDeviceFireKernel.h). */
#include "CommonDeviceFireKernel.h"
#include "DeviceKernelArgs.h"
#include "MovableParticles.h"
#include "StageClock.h"
#include "StopRequest.h"
#include "ReparamKernelSources.h"
#include "NonFiniteEnergyException.h"
#include "openmm/Integrator.h"
#include "openmm/System.h"
#include "openmm/common/ContextSelector.h"
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

using namespace ReparamPlugin;
using namespace OpenMM;

CommonDeviceFireKernel::CommonDeviceFireKernel(const std::string& name, const Platform& platform, ComputeContext& cc) :
        DeviceFireKernel(name, platform), cc(cc), context(NULL), isSetup(false), mixedIsDouble(false), blockSize(0),
        numBlocks(0), numMovable(0), tol(0.0), ff(0.0), fv(0.0), vv(0.0), groups(0), cpuForces(cc) {
}

void CommonDeviceFireKernel::setup() {
    mixedIsDouble = cc.getUseMixedPrecision() || cc.getUseDoublePrecision();
    int element = mixedIsDouble ? sizeof(double) : sizeof(float);
    int numAtoms = cc.getNumAtoms();
    const System& system = cc.getContextImpl()->getSystem();
    numMovable = countMovable(system);
    blockSize = std::min(256, cc.getMaxThreadBlockSize());
    numBlocks = reductionBlocks(cc, numAtoms, blockSize);
    ComputeArray* perAtom[] = {&v, &lastStep, &back, &accepted, &best, &forceBackup};
    const char* names[] = {"reparamFireV", "reparamFireStep", "reparamFireBack", "reparamFireX", "reparamFireBest",
                           "reparamFireForces"};
    for (int k = 0; k < 6; k++)
        perAtom[k]->initialize(cc, 3 * numAtoms, element, names[k]);
    reduceBuffer.initialize(cc, 3 * numBlocks, element, "reparamFireReduce");
    stats.initialize(cc, 4, element, "reparamFireStats");
    std::map<std::string, std::string> defines;
    projection.initialize(cc, system, defines);
    defines["THREAD_BLOCK_SIZE"] = cc.intToString(blockSize);
    defines["NUM_BLOCKS"] = cc.intToString(numBlocks);
    ComputeProgram program = compileDeviceProgram(cc, std::string(DeviceConstraintProjection::kernelSource()) +
                                               ReparamKernelSources::fire, defines);
    projection.createKernels(program);
    createKernels(program);
    isSetup = true;
}

void CommonDeviceFireKernel::createKernels(ComputeProgram& program) {
    ArrayInterface& correction = cc.getUseMixedPrecision() ? cc.getPosqCorrection() : cc.getPosq();
    ArrayInterface& forces = projection.getForces();
    statsKernel = program->createKernel("fireStats");
    for (ArrayInterface* array : {&forces, (ArrayInterface*) &v, &cc.getVelm(), &cc.getAtomIndexArray(),
                                  (ArrayInterface*) &reduceBuffer})
        statsKernel->addArg(*array);
    finishKernel = program->createKernel("fireFinish");
    finishKernel->addArg(reduceBuffer);
    finishKernel->addArg(stats);
    finishKernel->addArg();  // maxOnly
    resetKernel = program->createKernel("fireReset");
    resetKernel->addArg(v);
    resetKernel->addArg(back);
    resetKernel->addArg(lastStep);
    velocityKernel = program->createKernel("fireVelocity");
    for (ArrayInterface* array : {&forces, (ArrayInterface*) &v, (ArrayInterface*) &lastStep, &cc.getVelm(),
                                  &cc.getAtomIndexArray(), (ArrayInterface*) &reduceBuffer})
        velocityKernel->addArg(*array);
    for (int i = 0; i < 4; i++)
        velocityKernel->addArg();  // dt, mixing, keep, mix
    moveKernel = program->createKernel("fireMove");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getVelm(), &cc.getAtomIndexArray(),
                                  (ArrayInterface*) &lastStep, (ArrayInterface*) &back, (ArrayInterface*) &accepted,
                                  (ArrayInterface*) &stats})
        moveKernel->addArg(*array);
    moveKernel->addArg();  // maxStep
    saveKernel = program->createKernel("saveBest");
    restoreAcceptedKernel = program->createKernel("restoreBest");
    restoreBestKernel = program->createKernel("restoreBest");
    for (ComputeKernel* kernel : {&saveKernel, &restoreAcceptedKernel, &restoreBestKernel}) {
        (*kernel)->addArg(cc.getPosq());
        (*kernel)->addArg(correction);
        (*kernel)->addArg(cc.getAtomIndexArray());
        (*kernel)->addArg(kernel == &restoreAcceptedKernel ? accepted : best);
    }
    for (int i = 0; i < 4; i++) {
        restoreAcceptedKernel->addArg();  // periodic, box vectors
        restoreBestKernel->addArg();
    }
}

bool CommonDeviceFireKernel::evaluate(double& energy) {
    context->applyConstraints(tol);
    double e = context->calcForcesAndEnergy(true, true, groups);
    if (projection.loadForces()) {  // beyond the device's fixed-point range: the CPU platform's energy and forces
        double maxForce;
        e = cpuForces.evaluate(*context, groups, projection.getForces(), maxForce);
    }
    projection.project(projection.getForces(), false);
    projection.project(v, true);  // step 6: v onto the tangent space at the new point (v = 0 at the start)
    statsKernel->execute(numBlocks * blockSize, blockSize);
    finishKernel->setArg(2, 0);
    finishKernel->execute(blockSize, blockSize);
    std::vector<double> values;
    stats.download(values, true);  // float -> double in single precision
    if (!std::isfinite(e) || !std::isfinite(values[0]) || !std::isfinite(values[1]))
        return false;
    energy = e;
    ff = values[0];
    fv = values[1];
    vv = values[2];
    return true;
}

void CommonDeviceFireKernel::resetVelocity() {
    resetKernel->execute(3 * cc.getNumAtoms());
    fv = vv = 0.0;
}

void CommonDeviceFireKernel::move(double dt, double alpha, double maxStep) {
    double forceNorm = std::sqrt(ff);
    double vNext = vv + 2.0 * dt * fv + dt * dt * ff;  // |v + dt F|^2
    bool mixing = forceNorm > 0;
    setMixedArg(velocityKernel, 6, dt, mixedIsDouble);
    velocityKernel->setArg(7, (int) mixing);
    setMixedArg(velocityKernel, 8, 1.0 - alpha, mixedIsDouble);
    double mixWeight = mixing ? alpha * std::sqrt(std::max(vNext, 0.0)) / forceNorm : 0.0;
    setMixedArg(velocityKernel, 9, mixWeight, mixedIsDouble);
    velocityKernel->execute(numBlocks * blockSize, blockSize);
    finishKernel->setArg(2, 1);
    finishKernel->execute(blockSize, blockSize);
    setMixedArg(moveKernel, 8, maxStep, mixedIsDouble);
    moveKernel->execute(cc.getNumAtoms());
    projection.getForces().copyTo(forceBackup);
}

void CommonDeviceFireKernel::reject() {
    restoreAcceptedKernel->execute(cc.getNumAtoms());
    forceBackup.copyTo(projection.getForces());
    cc.clearBuffer(v);
    cc.clearBuffer(lastStep);
    fv = vv = 0.0;
}

void CommonDeviceFireKernel::saveBest() {
    saveKernel->execute(cc.getNumAtoms());
}

void CommonDeviceFireKernel::finish(bool atLast) {
    if (!atLast)
        restoreBestKernel->execute(cc.getNumAtoms());
    context->computeVirtualSites();
}

FireStageOutcome CommonDeviceFireKernel::run(ContextImpl& context, const FireStageSettings& settings, double tolerance) {
    ContextSelector selector(cc);
    Clock::time_point start = Clock::now();
    if (!isSetup)
        setup();
    cpuForces.startStage();
    this->context = &context;
    tol = context.getIntegrator().getConstraintTolerance();
    groups = context.getIntegrator().getIntegrationForceGroups();
    for (ComputeKernel* kernel : {&restoreAcceptedKernel, &restoreBestKernel})
        projection.setBoxArgs(*kernel, 4);
    for (ComputeArray* array : {&v, &lastStep, &back})
        cc.clearBuffer(*array);
    ff = fv = vv = 0.0;
    FireStageOutcome outcome = runFireDriver(*this, settings, tolerance, start);
    outcome.cpuForceEvaluations = cpuForces.getNumEvaluations();
    return outcome;
}
