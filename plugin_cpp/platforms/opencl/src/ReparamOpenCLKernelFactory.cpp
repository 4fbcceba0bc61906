/* The OpenCL platform's factory for the device stages (as openmm-torch's platforms/opencl): it hands the
 * Context's OpenCLContext to the common kernels (CommonDeviceKernels.h). The library is an OpenMM plugin:
 * Platform::loadPluginLibrary (or loadPluginsFromDirectory) calls registerKernelFactories(), which registers the
 * kernels with the OpenCL platform when that platform is loaded and does nothing otherwise. */
#include "CommonDeviceKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/internal/windowsExport.h"
#include "openmm/opencl/OpenCLContext.h"
#include "openmm/opencl/OpenCLPlatform.h"

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {
class ReparamOpenCLKernelFactory : public KernelFactory {
public:
    KernelImpl* createKernelImpl(std::string name, const Platform& platform, ContextImpl& context) const override {
        OpenCLPlatform::PlatformData& data = *static_cast<OpenCLPlatform::PlatformData*>(context.getPlatformData());
        if (data.contexts.size() != 1)
            throw OpenMMException("the device stages of openmm-reparam run on one OpenCL device only");
        return createCommonDeviceKernel(name, platform, *data.contexts[0], "opencl");
    }
};

KernelFactory* newFactory() {
    return new ReparamOpenCLKernelFactory();
}
} // namespace

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    registerCommonDeviceKernels("OpenCL", newFactory);
}
