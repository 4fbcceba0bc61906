/* runDeviceFireStage: dispatch to the platform's DeviceFireKernel (see DeviceFireStage.h). */
#include "DeviceFireStage.h"
#include "ContextAccess.h"
#include "DeviceKernelCache.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

static bool fireKernelRegistered(Context& context) {
    std::vector<std::string> names(1, DeviceFireKernel::Name());
    return context.getPlatform().supportsKernels(names);
}

bool ReparamPlugin::deviceFireAvailable(Context& context) {
    return fireKernelRegistered(context);
}

FireStageOutcome ReparamPlugin::runDeviceFireStage(Context& context, const FireStageSettings& settings, double tolerance) {
    settings.validate();
    if (!fireKernelRegistered(context))
        throw OpenMMException("no device FIRE stage is registered for the " + context.getPlatform().getName() +
                              " platform");
    ContextImpl& impl = ContextAccess::impl(context);
    Kernel kernel = cachedDeviceKernel(impl, DeviceFireKernel::Name());  // kept for the Context
    return kernel.getAs<DeviceFireKernel>().run(impl, settings, tolerance);
}
