/* runDeviceAdamStage: dispatch to the platform's DeviceAdamKernel (see DeviceAdamStage.h). */
#include "DeviceAdamStage.h"
#include "ConstraintProjector.h"
#include "ContextAccess.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

std::string ReparamPlugin::deviceStageBlocker(Context& context) {
    int largest = ConstraintProjector(context.getSystem()).largestGroup();
    if (largest > DeviceMaxConstraintGroup)
        return "a connected group of " + std::to_string(largest) + " constraints (the device stages project " +
               "groups of at most " + std::to_string(DeviceMaxConstraintGroup) + ")";
    return "";
}

static bool kernelRegistered(Context& context) {
    std::vector<std::string> names(1, DeviceAdamKernel::Name());
    return context.getPlatform().supportsKernels(names);
}

bool ReparamPlugin::deviceAdamAvailable(Context& context) {
    return kernelRegistered(context) && deviceStageBlocker(context).empty();
}

AdamStageOutcome ReparamPlugin::runDeviceAdamStage(Context& context, const AdamStageSettings& settings) {
    settings.validate();
    if (!kernelRegistered(context))
        throw OpenMMException("no device Adam stage is registered for the " + context.getPlatform().getName() +
                              " platform");
    std::string blocker = deviceStageBlocker(context);
    if (!blocker.empty())
        throw OpenMMException("the device Adam stage cannot run this System: " + blocker);
    ContextImpl& impl = ContextAccess::impl(context);
    Kernel kernel = context.getPlatform().createKernel(DeviceAdamKernel::Name(), impl);
    return kernel.getAs<DeviceAdamKernel>().run(impl, settings);
}
