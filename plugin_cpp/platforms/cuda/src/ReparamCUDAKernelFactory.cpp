/* The CUDA platform's factory for the device stages (as openmm-torch's platforms/cuda): it hands
 * CommonDeviceAdamKernel, CommonDeviceFireKernel and CommonDevicePreconKernel the Context's CudaContext (a ComputeContext, so the kernel source is the one the OpenCL
 * platform compiles). registerReparamCUDAKernels() is called from Python (openmm_reparam.engines.device) once
 * the CUDA platform (openmm-cuda-12 or -13) is known to load. Compiled against the wheel's openmm/cuda headers
 * and linked against the CUDA platform library; it has never run (no GPU where it was written). */
#include "CommonDeviceAdamKernel.h"
#include "CommonDeviceFireKernel.h"
#include "CommonDevicePreconKernel.h"
#include "openmm/KernelFactory.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/cuda/CudaContext.h"
#include "openmm/cuda/CudaPlatform.h"

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {
class ReparamCUDAKernelFactory : public KernelFactory {
public:
    KernelImpl* createKernelImpl(std::string name, const Platform& platform, ContextImpl& context) const override {
        CudaPlatform::PlatformData& data = *static_cast<CudaPlatform::PlatformData*>(context.getPlatformData());
        if (data.contexts.size() != 1)
            throw OpenMMException("the device stages of openmm-reparam run on one CUDA device only");
        CudaContext& cu = *data.contexts[0];
        if (name == DeviceAdamKernel::Name())
            return new CommonDeviceAdamKernel(name, platform, cu, "cuda");
        if (name == DeviceFireKernel::Name())
            return new CommonDeviceFireKernel(name, platform, cu);
        if (name == DevicePreconKernel::Name())
            return new CommonDevicePreconKernel(name, platform, cu);
        throw OpenMMException("openmm-reparam CUDA: unknown kernel " + name);
    }
};
} // namespace

extern "C" int registerReparamCUDAKernels() {
    try {
        Platform& platform = Platform::getPlatformByName("CUDA");
        platform.registerKernelFactory(DeviceFireKernel::Name(), new ReparamCUDAKernelFactory());
        platform.registerKernelFactory(DeviceAdamKernel::Name(), new ReparamCUDAKernelFactory());
        platform.registerKernelFactory(DevicePreconKernel::Name(), new ReparamCUDAKernelFactory());
        return 1;
    }
    catch (std::exception& error) {
        return 0;
    }
}
