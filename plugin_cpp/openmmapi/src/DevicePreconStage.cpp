/* runDevicePreconStage: dispatch to the platform's DevicePreconKernel (see DevicePreconStage.h). */
#include "DevicePreconStage.h"
#include "ContextAccess.h"
#include "DeviceKernelCache.h"
#include "MovableParticles.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/System.h"
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

static bool preconKernelRegistered(Context& context) {
    std::vector<std::string> names(1, DevicePreconKernel::Name());
    return context.getPlatform().supportsKernels(names);
}

bool ReparamPlugin::devicePreconAvailable(Context& context) {
    return preconKernelRegistered(context);
}

PreconStageOutcome ReparamPlugin::runDevicePreconStage(Context& context, const PreconStageSettings& settings,
                                                       const PreconMatrix& precon, const std::vector<int>& coupled,
                                                       double tolerance) {
    settings.validate();
    if (!preconKernelRegistered(context))
        throw OpenMMException("no device precon stage is registered for the " + context.getPlatform().getName() +
                              " platform");
    const System& system = context.getSystem();
    if (precon.size() != countMovable(system))
        throw OpenMMException("runDevicePreconStage: P must have one row per movable particle");
    for (int i : coupled)
        if (i < 0 || i >= system.getNumParticles())
            throw OpenMMException("runDevicePreconStage: coupled particle index out of range");
    ContextImpl& impl = ContextAccess::impl(context);
    Kernel kernel = cachedDeviceKernel(impl, DevicePreconKernel::Name());  // kept for the Context
    return kernel.getAs<DevicePreconKernel>().run(impl, settings, precon, coupled, tolerance);
}
