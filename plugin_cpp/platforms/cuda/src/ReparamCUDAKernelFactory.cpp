/* The CUDA platform's factory for the device stages (as openmm-torch's platforms/cuda): it hands the Context's
 * CudaContext (a ComputeContext, so the kernel source is the one the OpenCL platform compiles) to the common
 * kernels (CommonDeviceKernels.h). The library is an OpenMM plugin: Platform::loadPluginLibrary (or
 * loadPluginsFromDirectory) calls registerKernelFactories(), which registers the kernels with the CUDA platform
 * (openmm-cuda-12 or -13) when that platform is loaded and does nothing otherwise. Compiled against the wheel's
 * openmm/cuda headers and linked against the CUDA platform library. */
#include "CommonDeviceKernels.h"
#include "openmm/OpenMMException.h"
#include "openmm/internal/ContextImpl.h"
#include "openmm/internal/windowsExport.h"
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
        return createCommonDeviceKernel(name, platform, *data.contexts[0], "cuda");
    }
};

KernelFactory* newFactory() {
    return new ReparamCUDAKernelFactory();
}
} // namespace

extern "C" OPENMM_EXPORT void registerKernelFactories() {
    registerCommonDeviceKernels("CUDA", newFactory);
}
