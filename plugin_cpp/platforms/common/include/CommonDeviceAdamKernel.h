#ifndef OPENMM_REPARAM_COMMON_DEVICE_ADAM_KERNEL_H_
#define OPENMM_REPARAM_COMMON_DEVICE_ADAM_KERNEL_H_
/**
 * CommonDeviceAdamKernel: DeviceAdamKernel on OpenMM's common compute API (ComputeContext, ComputeArray,
 * ComputeKernel), one source for the CUDA, OpenCL and HIP platforms; each platform's factory (platforms/<name>)
 * hands it the platform's ComputeContext. See DeviceAdamStage.h for the step.
 */
#include "DeviceAdamStage.h"
#include "DeviceConstraintProjection.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include <string>
#include <vector>

namespace ReparamPlugin {

class CommonDeviceAdamKernel : public DeviceAdamKernel {
public:
    CommonDeviceAdamKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::ComputeContext& cc,
                           const std::string& platformLabel);
    AdamStageOutcome run(OpenMM::ContextImpl& context, const AdamStageSettings& settings) override;
private:
    void setup();
    void createKernels(OpenMM::ComputeProgram& program);
    /** The forces projected onto the constraints, then the sum of the squared gradient components and the
     *  largest atomic raw force, reduced on the device and downloaded. */
    void gradientStats(double& sumSquares, double& maxForce);
    void adamUpdate(const AdamStageSettings& settings, int step);
    /** Per-run arguments: the spring's stiffness and the periodic box. */
    void setRunArgs(double stiffness);
    OpenMM::ComputeContext& cc;
    std::string label;
    bool isSetup, mixedIsDouble;
    int blockSize, numBlocks;
    DeviceConstraintProjection projection;
    OpenMM::ComputeArray moment1, moment2, best, reduceBuffer, stats, candidate;
    OpenMM::ComputeKernel statsKernel, finishKernel, updateKernel, saveKernel, restoreKernel, candidateKernel;
};

} // namespace ReparamPlugin

#endif
