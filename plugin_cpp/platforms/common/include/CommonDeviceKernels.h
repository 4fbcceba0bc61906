#ifndef OPENMM_REPARAM_COMMON_DEVICE_KERNELS_H_
#define OPENMM_REPARAM_COMMON_DEVICE_KERNELS_H_
/**
 * The device stages' kernels on a platform's ComputeContext, for the per-platform factories (platforms/opencl,
 * platforms/cuda): each factory finds its Context's ComputeContext and hands it here, so the list of kernels and
 * their registration live in one place.
 */
#include "openmm/KernelFactory.h"
#include "openmm/KernelImpl.h"
#include "openmm/Platform.h"
#include "openmm/common/ComputeContext.h"
#include <string>

namespace ReparamPlugin {

/** The device stage kernel called name on cc ("opencl", "cuda": label, what result.engine says); throws
 *  OpenMMException for an unknown name. The first call for a cc gives it a listener that frees the kernels
 *  DeviceKernelCache keeps for its Context when cc is destroyed. */
OpenMM::KernelImpl* createCommonDeviceKernel(const std::string& name, const OpenMM::Platform& platform,
                                             OpenMM::ComputeContext& cc, const std::string& label);

/** Register a factory made by newFactory() for every device stage kernel on the platform called platformName,
 *  unless they are registered already; quietly nothing when that platform is not there (a plugin library loaded
 *  before, or without, its platform). Whether the platform has the kernels afterwards. */
bool registerCommonDeviceKernels(const std::string& platformName, OpenMM::KernelFactory* (*newFactory)());

} // namespace ReparamPlugin

#endif
