/* CommonDeviceFireKernel: the device FIRE stage on the common compute API (see CommonDeviceFireKernel.h). */
#include "CommonDeviceFireKernel.h"
#include "DeviceKernelArgs.h"
#include "MovableParticles.h"
#include "StageClock.h"
#include "StopRequest.h"
#include "DeviceFireKernelSource.h"
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
        DeviceFireKernel(name, platform), cc(cc), isSetup(false), mixedIsDouble(false), blockSize(0), numBlocks(0),
        numMovable(0), tol(0.0), groups(0), cpuForces(cc) {
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
    ComputeProgram program = cc.compileProgram(std::string(DeviceConstraintProjection::kernelSource()) +
                                               deviceFireKernelSource, defines);
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

bool CommonDeviceFireKernel::evaluate(ContextImpl& context, State& state) {
    context.applyConstraints(tol);
    double energy = context.calcForcesAndEnergy(true, true, groups);
    if (projection.loadForces()) {  // beyond the device's fixed-point range: the CPU platform's energy and forces
        double maxForce;
        energy = cpuForces.evaluate(context, groups, projection.getForces(), maxForce);
    }
    projection.project(projection.getForces(), false);
    projection.project(v, true);  // step 6: v onto the tangent space at the new point (v = 0 at the start)
    statsKernel->execute(numBlocks * blockSize, blockSize);
    finishKernel->setArg(2, 0);
    finishKernel->execute(blockSize, blockSize);
    std::vector<double> values;
    stats.download(values, true);  // float -> double in single precision
    if (!std::isfinite(energy) || !std::isfinite(values[0]) || !std::isfinite(values[1]))
        return false;
    state.energy = energy;
    state.ff = values[0];
    state.fv = values[1];
    state.vv = values[2];
    return true;
}

bool CommonDeviceFireKernel::adapt(const FireStageSettings& s, State& state, int iteration) {
    if (state.vv == 0.0)
        return true;
    if (state.fv > 0) {
        state.nPositive++;
        state.nNegative = 0;
        if (state.nPositive > s.nDelay) {
            state.dt = std::min(state.dt * s.fInc, s.dtMax);
            state.alpha = state.alpha * s.fAlpha;
        }
        return true;
    }
    state.nPositive = 0;
    state.nNegative++;
    if (state.nNegative > s.maxUphill)
        return false;
    if (!(s.initialDelay == 1 && iteration < s.nDelay)) {
        state.dt = std::max(state.dt * s.fDec, s.dtMin);
        state.alpha = s.alphaStart;
    }
    resetKernel->execute(3 * cc.getNumAtoms());
    state.fv = state.vv = 0.0;
    return true;
}

bool CommonDeviceFireKernel::advance(ContextImpl& context, const FireStageSettings& s, State& state) {
    double forceNorm = std::sqrt(state.ff);
    double vv = state.vv + 2.0 * state.dt * state.fv + state.dt * state.dt * state.ff;  // |v + dt F|^2
    bool mixing = forceNorm > 0;
    setMixedArg(velocityKernel, 6, state.dt, mixedIsDouble);
    velocityKernel->setArg(7, (int) mixing);
    setMixedArg(velocityKernel, 8, 1.0 - state.alpha, mixedIsDouble);
    double mixWeight = mixing ? state.alpha * std::sqrt(std::max(vv, 0.0)) / forceNorm : 0.0;
    setMixedArg(velocityKernel, 9, mixWeight, mixedIsDouble);
    velocityKernel->execute(numBlocks * blockSize, blockSize);
    finishKernel->setArg(2, 1);
    finishKernel->execute(blockSize, blockSize);
    setMixedArg(moveKernel, 8, s.maxStep, mixedIsDouble);
    moveKernel->execute(cc.getNumAtoms());
    projection.getForces().copyTo(forceBackup);
    state.evaluations++;
    State next = state;
    if (!evaluate(context, next)) {  // step 5's non-finite branch: back to the accepted point
        restoreAcceptedKernel->execute(cc.getNumAtoms());
        forceBackup.copyTo(projection.getForces());
        cc.clearBuffer(v);
        cc.clearBuffer(lastStep);
        state.fv = state.vv = 0.0;
        state.alpha = s.alphaStart;
        state.dt = state.dt * s.fDec;
        state.nPositive = 0;
        state.nNegative++;
        return false;
    }
    state = next;
    if (state.energy < state.bestEnergy) {
        state.bestEnergy = state.energy;
        saveKernel->execute(cc.getNumAtoms());
    }
    return true;
}

FireStageOutcome CommonDeviceFireKernel::run(ContextImpl& context, const FireStageSettings& settings, double tolerance) {
    ContextSelector selector(cc);
    Clock::time_point start = Clock::now();
    if (!isSetup)
        setup();
    tol = context.getIntegrator().getConstraintTolerance();
    groups = context.getIntegrator().getIntegrationForceGroups();
    for (ComputeKernel* kernel : {&restoreAcceptedKernel, &restoreBestKernel})
        projection.setBoxArgs(*kernel, 4);
    for (ComputeArray* array : {&v, &lastStep, &back})
        cc.clearBuffer(*array);
    State state;
    if (!evaluate(context, state))
        throw NonFiniteEnergyException("runFireStage: the starting point has a non-finite energy or forces");
    saveKernel->execute(cc.getNumAtoms());
    state.bestEnergy = state.energy;
    state.dt = settings.dt;
    state.alpha = settings.alphaStart;
    state.nPositive = state.nNegative = 0;
    state.evaluations = 1;
    FireStageOutcome outcome;
    outcome.initialEnergy = state.energy;
    double target = tolerance * settings.toleranceFactor;
    auto rmsForce = [&]() { return numMovable == 0 ? 0.0 : std::sqrt(state.ff / numMovable); };
    for (int i = 0; i < settings.maxSteps; i++) {
        if (rmsForce() <= target) {
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
        if (!adapt(settings, state, i)) {
            outcome.stopReason = "stuck";
            break;
        }
        if (!advance(context, settings, state)) {
            if (state.nNegative > settings.maxUphill) {
                outcome.stopReason = "stuck";
                break;
            }
            continue;
        }
        outcome.energies.push_back(state.energy);
        outcome.times.push_back(secondsSince(start));
    }
    if (outcome.stopReason == "max_steps" && rmsForce() <= target)
        outcome.stopReason = "converged";
    bool converged = outcome.stopReason == "converged";
    outcome.finalRmsForce = rmsForce();
    if (!converged)
        restoreBestKernel->execute(cc.getNumAtoms());
    context.computeVirtualSites();
    outcome.finalEnergy = converged ? state.energy : state.bestEnergy;
    outcome.iterations = (int) outcome.energies.size();
    outcome.energyEvaluations = state.evaluations;
    outcome.wallTime = secondsSince(start);
    outcome.cpuForceEvaluations = cpuForces.getNumEvaluations();
    return outcome;
}
