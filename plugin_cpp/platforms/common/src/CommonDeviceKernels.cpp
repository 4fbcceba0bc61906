/* The device stages' kernels and their registration (see CommonDeviceKernels.h). */
#include "CommonDeviceKernels.h"
#include "CommonDeviceAdamKernel.h"
#include "CommonDeviceFireKernel.h"
#include "CommonDevicePreconKernel.h"
#include "DeviceKernelCache.h"
#include "openmm/OpenMMException.h"
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {
/** Owned by a ComputeContext, which deletes its listeners first thing in its destructor: frees the device stage
 *  kernels kept for its Context then, while the device memory they hold is still there (DeviceKernelCache.h). */
class KeptKernelsRelease : public ComputeContext::ReorderListener {
public:
    explicit KeptKernelsRelease(const ContextImpl* context) : context(context) {}
    ~KeptKernelsRelease() {
        releaseDeviceKernels(context);
    }
    void execute() override {}  // the kernels index atoms through the atom index array
    const ContextImpl* const context;
};

void releaseWithComputeContext(ComputeContext& cc) {
    for (ComputeContext::ReorderListener* listener : cc.getReorderListeners())
        if (dynamic_cast<KeptKernelsRelease*>(listener) != NULL)
            return;
    cc.addReorderListener(new KeptKernelsRelease(cc.getContextImpl()));
}
} // namespace

KernelImpl* ReparamPlugin::createCommonDeviceKernel(const std::string& name, const Platform& platform,
                                                    ComputeContext& cc, const std::string& label) {
    releaseWithComputeContext(cc);
    if (name == DeviceAdamKernel::Name())
        return new CommonDeviceAdamKernel(name, platform, cc, label);
    if (name == DeviceFireKernel::Name())
        return new CommonDeviceFireKernel(name, platform, cc);
    if (name == DevicePreconKernel::Name())
        return new CommonDevicePreconKernel(name, platform, cc);
    throw OpenMMException("openmm-reparam " + label + ": unknown kernel " + name);
}

bool ReparamPlugin::registerCommonDeviceKernels(const std::string& platformName, KernelFactory* (*newFactory)()) {
    Platform* platform = NULL;
    for (int i = 0; i < Platform::getNumPlatforms() && platform == NULL; i++)
        if (Platform::getPlatform(i).getName() == platformName)
            platform = &Platform::getPlatform(i);
    if (platform == NULL)
        return false;
    std::vector<std::string> names = {DeviceAdamKernel::Name(), DeviceFireKernel::Name(), DevicePreconKernel::Name()};
    if (platform->supportsKernels(names))  // loaded twice (by hand and by OpenMM's loader, say): keep the first
        return true;
    for (const std::string& name : names)
        platform->registerKernelFactory(name, newFactory());
    return true;
}
