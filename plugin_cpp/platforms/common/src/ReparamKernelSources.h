#ifndef OPENMM_REPARAM_KERNEL_SOURCES_H_
#define OPENMM_REPARAM_KERNEL_SOURCES_H_
/* The device stages' kernel sources, one string per file of platforms/common/src/kernels (OpenMM's common kernel
 * language, compiled at run time by the Context's ComputeContext for CUDA or OpenCL). Defined in a source that
 * the build generates from those files (cmake/EncodeKernelSources.cmake). */
#include <string>

namespace ReparamPlugin {

class ReparamKernelSources {
public:
    /** The constraint projection's kernels (DeviceConstraintProjection), compiled before each stage's own. */
    static const std::string projection;
    /** The Adam stage's kernels (CommonDeviceAdamKernel). */
    static const std::string adam;
    /** A generator stage's kernels (DeviceGeneratorKernels), compiled after adam's. */
    static const std::string generator;
    /** The FIRE stage's kernels (CommonDeviceFireKernel). */
    static const std::string fire;
    /** The precon stage's kernels (CommonDevicePreconKernel). */
    static const std::string precon;
};

} // namespace ReparamPlugin

#endif
