#ifndef OPENMM_REPARAM_COMMON_DEVICE_FIRE_KERNEL_H_
#define OPENMM_REPARAM_COMMON_DEVICE_FIRE_KERNEL_H_
/**
 * CommonDeviceFireKernel: DeviceFireKernel on OpenMM's common compute API, one source for CUDA and OpenCL
 * (see DeviceFireStage.h for the iteration, FireStage.h for the steps it mirrors).
 */
#include "CpuForceFallback.h"
#include "DeviceConstraintProjection.h"
#include "DeviceFireStage.h"
#include "FireDriver.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include <string>

namespace ReparamPlugin {

/** The device's FireVectorOps: F (the projected forces), v, D, B, the accepted and the best positions in
 *  ComputeArrays, moved by the FIRE kernels; runFireDriver holds the loop and the scalar rules. */
class CommonDeviceFireKernel : public DeviceFireKernel, private FireVectorOps {
public:
    CommonDeviceFireKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::ComputeContext& cc);
    FireStageOutcome run(OpenMM::ContextImpl& context, const FireStageSettings& settings, double tolerance) override;
private:
    void setup();
    void createKernels(OpenMM::ComputeProgram& program);
    int getNumMovable() const override { return numMovable; }
    /** Constraints, forces (on the CPU platform where the device's overflowed: CpuForceFallback), projected
     *  forces and velocities, the sums F.F, F.v, v.v; false (sums untouched) if not finite. */
    bool evaluate(double& energy) override;
    double forceSquared() const override { return ff; }
    double power() const override { return fv; }
    bool velocityIsZero() const override { return vv == 0.0; }
    void resetVelocity() override;
    /** |v| after the velocity step comes from the sums (v.v + 2 dt F.v + dt^2 F.F), not summed again. */
    void move(double dt, double alpha, double maxStep) override;
    void reject() override;
    void accept() override {}  // v was projected in evaluate, D is kept in lastStep
    void saveBest() override;
    void finish(bool atLast) override;
    OpenMM::ComputeContext& cc;
    OpenMM::ContextImpl* context;
    bool isSetup, mixedIsDouble;
    int blockSize, numBlocks, numMovable;
    double tol, ff, fv, vv;
    int groups;
    DeviceConstraintProjection projection;
    CpuForceFallback cpuForces;
    OpenMM::ComputeArray v, lastStep, back, accepted, best, forceBackup, reduceBuffer, stats;
    OpenMM::ComputeKernel statsKernel, finishKernel, resetKernel, velocityKernel, moveKernel, saveKernel,
            restoreAcceptedKernel, restoreBestKernel;
};

} // namespace ReparamPlugin

#endif
