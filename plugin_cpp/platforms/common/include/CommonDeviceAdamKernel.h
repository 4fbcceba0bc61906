#ifndef OPENMM_REPARAM_COMMON_DEVICE_ADAM_KERNEL_H_
#define OPENMM_REPARAM_COMMON_DEVICE_ADAM_KERNEL_H_
/**
 * CommonDeviceAdamKernel: DeviceAdamKernel on OpenMM's common compute API (ComputeContext, ComputeArray,
 * ComputeKernel), one source for the CUDA, OpenCL and HIP platforms; each platform's factory (platforms/<name>)
 * hands it the platform's ComputeContext. See DeviceAdamStage.h for the step. With DeviceLinearModes (a linear
 * stage) the program is compiled with HAS_MODES and the linear kernels: X0 + V z for the rows of the modes before
 * each evaluation, dz = V^T g after it, Adam on z beside the coordinates' Adam.
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
    AdamStageOutcome run(OpenMM::ContextImpl& context, const AdamStageSettings& settings,
                         DeviceLinearModes* linear) override;
private:
    void setup(const DeviceLinearModes* linear);
    /** The linear generator's arrays (placeholders of one element without one, so the argument lists agree). */
    void uploadModes(const DeviceLinearModes* linear);
    void uploadMixed(OpenMM::ComputeArray& array, const std::vector<double>& values, const std::string& name);
    void createKernels(OpenMM::ComputeProgram& program);
    void createModeKernels(OpenMM::ComputeProgram& program);
    /** The forces projected onto the constraints, then the sum of the squared gradient components and the
     *  largest atomic raw force, reduced on the device and downloaded. */
    void gradientStats(double& sumSquares, double& maxForce);
    /** One Adam step: the coordinates, and z in a linear stage. */
    void adamUpdate(const AdamStageSettings& settings, int step);
    /** Per-run arguments: the spring's stiffness and the periodic box. */
    void setRunArgs(double stiffness);
    OpenMM::ComputeContext& cc;
    std::string label;
    bool isSetup, mixedIsDouble, hasModes;
    int blockSize, numBlocks, numModes;
    DeviceConstraintProjection projection;
    OpenMM::ComputeArray moment1, moment2, best, reduceBuffer, stats, candidate;
    OpenMM::ComputeArray modeRow, modes, modeX0, z, zMoment1, zMoment2, dz;
    OpenMM::ComputeKernel statsKernel, finishKernel, updateKernel, saveKernel, restoreKernel, candidateKernel;
    OpenMM::ComputeKernel positionsKernel, modeGradientKernel, modeUpdateKernel;
};

} // namespace ReparamPlugin

#endif
