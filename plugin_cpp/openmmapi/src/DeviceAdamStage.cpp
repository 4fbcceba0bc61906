/* runDeviceAdamStage: dispatch to the platform's DeviceAdamKernel (see DeviceAdamStage.h). */
#include "DeviceAdamStage.h"
#include "ContextAccess.h"
#include "DeviceKernelCache.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include <sstream>
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

/** What a generator stage's program depends on: the generator's kind, layers and the shapes of its modes and
 *  parameters (DeviceGeneratorKernels::sameShapes). */
static std::string shapeKey(const ReparamGenerator& generator) {
    std::ostringstream key;
    std::vector<double> values;
    int rows, cols;
    generator.getBuffer("modes", values, rows, cols);
    key << generator.getKind() << " layers " << generator.getNumLayers() << " modes " << rows << "x" << cols;
    for (int p = 0; p < generator.getNumInnerParameters(); p++) {
        generator.getParameter(p, values, rows, cols);
        key << " " << rows << "x" << cols;
    }
    return key.str();
}

static AdamStageOutcome runKernel(Context& context, const AdamStageSettings& settings, ReparamGenerator* generator) {
    settings.validate();
    if (!kernelRegistered(context))
        throw OpenMMException("no device Adam stage is registered for the " + context.getPlatform().getName() +
                              " platform");
    if (generator != NULL) {
        generator->validate();
        if (generator->getNumAtoms() != context.getSystem().getNumParticles())
            throw OpenMMException("the generator and the System have different numbers of atoms");
    }
    ContextImpl& impl = ContextAccess::impl(context);
    // The coordinate stage's kernel is kept for the Context; a generator stage's program is compiled for its
    // generator's shapes, so its kernel is kept for the Context and those shapes.
    Kernel kernel = generator == NULL ? cachedDeviceKernel(impl, DeviceAdamKernel::Name())
                                      : cachedDeviceKernel(impl, DeviceAdamKernel::Name(), shapeKey(*generator));
    return kernel.getAs<DeviceAdamKernel>().run(impl, settings, generator);
}

AdamStageOutcome ReparamPlugin::runDeviceAdamStage(Context& context, const AdamStageSettings& settings) {
    return runKernel(context, settings, NULL);
}

AdamStageOutcome ReparamPlugin::runDeviceGeneratorStage(Context& context, ReparamGenerator& generator,
                                                        const AdamStageSettings& settings) {
    if (generator.getKind() == "torchscript")
        throw OpenMMException("runDeviceGeneratorStage: a torchscript generator runs on the host (runAdamStage)");
    return runKernel(context, settings, &generator);
}
