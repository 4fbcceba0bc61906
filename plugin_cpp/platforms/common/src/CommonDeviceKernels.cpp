/* The device stages' kernels and their registration (see CommonDeviceKernels.h). */
#include "CommonDeviceKernels.h"
#include "CommonDeviceAdamKernel.h"
#include "CommonDeviceFireKernel.h"
#include "CommonDevicePreconKernel.h"
#include "openmm/OpenMMException.h"
#include <exception>

using namespace ReparamPlugin;
using namespace OpenMM;

KernelImpl* ReparamPlugin::createCommonDeviceKernel(const std::string& name, const Platform& platform,
                                                    ComputeContext& cc, const std::string& label) {
    if (name == DeviceAdamKernel::Name())
        return new CommonDeviceAdamKernel(name, platform, cc, label);
    if (name == DeviceFireKernel::Name())
        return new CommonDeviceFireKernel(name, platform, cc);
    if (name == DevicePreconKernel::Name())
        return new CommonDevicePreconKernel(name, platform, cc);
    throw OpenMMException("openmm-reparam " + label + ": unknown kernel " + name);
}

int ReparamPlugin::registerCommonDeviceKernels(const std::string& platformName, KernelFactory* (*newFactory)()) {
    try {
        Platform& platform = Platform::getPlatformByName(platformName);
        for (const std::string& name : {DeviceAdamKernel::Name(), DeviceFireKernel::Name(), DevicePreconKernel::Name()})
            platform.registerKernelFactory(name, newFactory());
        return 1;
    }
    catch (std::exception& error) {
        return 0;
    }
}
