/* runDeviceAdamStage: dispatch to the platform's DeviceAdamKernel (see DeviceAdamStage.h). */
#include "DeviceAdamStage.h"
#include "ContextAccess.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include <set>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

static bool kernelRegistered(Context& context) {
    std::vector<std::string> names(1, DeviceAdamKernel::Name());
    return context.getPlatform().supportsKernels(names);
}

bool ReparamPlugin::deviceAdamAvailable(Context& context) {
    return kernelRegistered(context);
}

void DeviceLinearModes::validate(int numParticles) const {
    size_t rows = atoms.size();
    if (numModes < 1 || rows == 0)
        throw OpenMMException("DeviceLinearModes: needs at least one mode and one row");
    if (modes.size() != rows * numModes || x0.size() != 3 * rows || z.size() != 3 * (size_t) numModes)
        throw OpenMMException("DeviceLinearModes: modes must be rows x numModes, x0 rows x 3 and z numModes x 3");
    std::set<int> seen;
    for (int atom : atoms)
        if (atom < 0 || atom >= numParticles || !seen.insert(atom).second)
            throw OpenMMException("DeviceLinearModes: each row must be a distinct particle of the System");
}

static AdamStageOutcome runKernel(Context& context, const AdamStageSettings& settings, DeviceLinearModes* linear) {
    settings.validate();
    if (!kernelRegistered(context))
        throw OpenMMException("no device Adam stage is registered for the " + context.getPlatform().getName() +
                              " platform");
    if (linear != NULL)
        linear->validate(context.getSystem().getNumParticles());
    ContextImpl& impl = ContextAccess::impl(context);
    Kernel kernel = context.getPlatform().createKernel(DeviceAdamKernel::Name(), impl);
    return kernel.getAs<DeviceAdamKernel>().run(impl, settings, linear);
}

AdamStageOutcome ReparamPlugin::runDeviceAdamStage(Context& context, const AdamStageSettings& settings) {
    return runKernel(context, settings, NULL);
}

AdamStageOutcome ReparamPlugin::runDeviceLinearStage(Context& context, const AdamStageSettings& settings,
                                                     DeviceLinearModes& linear) {
    return runKernel(context, settings, &linear);
}
