/* The OpenCL platform's factory for the device stages (as openmm-torch's platforms/opencl): it hands
 * CommonDeviceAdamKernel, CommonDeviceFireKernel and CommonDevicePreconKernel the Context's OpenCLContext. registerReparamOpenCLKernels() is called from Python
 * (openmm_reparam.engines.device) once the OpenCL platform is known to load. */
#include "CommonDeviceAdamKernel.h"
#include "CommonDeviceFireKernel.h"
#include "CommonDevicePreconKernel.h"
#include "openmm/KernelFactory.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/internal/ContextImpl.h"
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
        OpenCLContext& cl = *data.contexts[0];
        if (name == DeviceAdamKernel::Name())
            return new CommonDeviceAdamKernel(name, platform, cl, "opencl");
        if (name == DeviceFireKernel::Name())
            return new CommonDeviceFireKernel(name, platform, cl);
        if (name == DevicePreconKernel::Name())
            return new CommonDevicePreconKernel(name, platform, cl);
        throw OpenMMException("openmm-reparam OpenCL: unknown kernel " + name);
    }
};
} // namespace

extern "C" int registerReparamOpenCLKernels() {
    try {
        Platform& platform = Platform::getPlatformByName("OpenCL");
        platform.registerKernelFactory(DeviceFireKernel::Name(), new ReparamOpenCLKernelFactory());
        platform.registerKernelFactory(DeviceAdamKernel::Name(), new ReparamOpenCLKernelFactory());
        platform.registerKernelFactory(DevicePreconKernel::Name(), new ReparamOpenCLKernelFactory());
        return 1;
    }
    catch (std::exception& error) {
        return 0;
    }
}
