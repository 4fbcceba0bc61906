#ifndef OPENMM_REPARAM_COMMON_DEVICE_FIRE_KERNEL_H_
#define OPENMM_REPARAM_COMMON_DEVICE_FIRE_KERNEL_H_
/**
 * CommonDeviceFireKernel: DeviceFireKernel on OpenMM's common compute API, one source for CUDA and OpenCL
 * (see DeviceFireStage.h for the iteration, FireStage.h for the steps it mirrors).
 */
#include "CpuForceFallback.h"
#include "DeviceConstraintProjection.h"
#include "DeviceFireStage.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include <string>

namespace ReparamPlugin {

class CommonDeviceFireKernel : public DeviceFireKernel {
public:
    CommonDeviceFireKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::ComputeContext& cc);
    FireStageOutcome run(OpenMM::ContextImpl& context, const FireStageSettings& settings, double tolerance) override;
private:
    /** The host-side scalars of the iteration (FireIterate in FireStage.cpp). */
    struct State {
        double energy, bestEnergy, dt, alpha, ff, fv, vv;
        int nPositive, nNegative, evaluations;
    };
    void setup();
    void createKernels(OpenMM::ComputeProgram& program);
    /** Constraints, forces (on the CPU platform where the device's overflowed: CpuForceFallback), projected
     *  forces and velocities, the sums; false if the energy or forces are not finite. */
    bool evaluate(OpenMM::ContextImpl& context, State& state);
    bool adapt(const FireStageSettings& s, State& state, int iteration);
    bool advance(OpenMM::ContextImpl& context, const FireStageSettings& s, State& state);
    OpenMM::ComputeContext& cc;
    bool isSetup, mixedIsDouble;
    int blockSize, numBlocks, numMovable;
    double tol;
    int groups;
    DeviceConstraintProjection projection;
    CpuForceFallback cpuForces;
    OpenMM::ComputeArray v, lastStep, back, accepted, best, forceBackup, reduceBuffer, stats;
    OpenMM::ComputeKernel statsKernel, finishKernel, resetKernel, velocityKernel, moveKernel, saveKernel,
            restoreAcceptedKernel, restoreBestKernel;
};

} // namespace ReparamPlugin

#endif
