/*
 * The OpenCL device stages from C++ alone: OpenMM's loader loads the platforms and then the plugin's OpenCL
 * library (Platform::loadPluginLibrary, which calls its registerKernelFactories), and a device FIRE stage runs on
 * the bent chain on an OpenCL Context. A second stage on the same Context creates no kernel and compiles no
 * program (DeviceKernelCache.h); a new Context gets a kernel of its own. Skips (exit code 77) when the OpenCL
 * library was not built, or there is no OpenCL platform or device.
 */
#include "DeviceFireStage.h"
#include "DeviceKernelCache.h"
#include "TestChain.h"
#include "TestStageSettings.h"
#include "TestUtilities.h"
#include "OpenMM.h"
#include <iostream>
#include <memory>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

static const int Skip = 77;

static int skip(const std::string& why) {
    std::cout << "SKIPPED: " << why << std::endl;
    return Skip;
}

static FireStageOutcome runOnNewContext(System& system, int& kernels, int& programs) {
    VerletIntegrator integrator(0.001);
    Context context(system, integrator, Platform::getPlatformByName("OpenCL"));
    context.setPositions(chainStartPositions());
    DeviceStageCounts before = getDeviceStageCounts();
    FireStageOutcome first = runDeviceFireStage(context, fireStageSettings(5000), 1.0);
    DeviceStageCounts between = getDeviceStageCounts();
    REPARAM_ASSERT(between.kernelsCreated == before.kernelsCreated + 1);
    REPARAM_ASSERT(between.programsCompiled == before.programsCompiled + 1);
    context.setPositions(chainStartPositions());
    FireStageOutcome second = runDeviceFireStage(context, fireStageSettings(5000), 1.0);
    DeviceStageCounts after = getDeviceStageCounts();
    REPARAM_ASSERT(after.kernelsCreated == between.kernelsCreated);  // the Context's kernel, kept
    REPARAM_ASSERT(after.programsCompiled == between.programsCompiled);
    REPARAM_ASSERT(second.stopReason == first.stopReason && second.iterations == first.iterations);
    REPARAM_ASSERT_CLOSE(second.finalEnergy, first.finalEnergy, 1e-3);
    kernels = after.kernelsCreated;
    programs = after.programsCompiled;
    return first;
}

int main() {
#if !defined(REPARAM_OPENCL_PLUGIN) || !defined(REPARAM_OPENMM_PLUGIN_DIR)
    return skip("the plugin's OpenCL library was not built");
#else
    try {
        Platform::loadPluginsFromDirectory(REPARAM_OPENMM_PLUGIN_DIR);
        bool hasOpenCL = false;
        for (int i = 0; i < Platform::getNumPlatforms(); i++)
            hasOpenCL = hasOpenCL || Platform::getPlatform(i).getName() == "OpenCL";
        if (!hasOpenCL)
            return skip("no OpenCL platform (OpenMM's OpenCL plugin did not load: no OpenCL runtime?)");
        std::vector<std::string> names(1, DeviceFireKernel::Name());
        REPARAM_ASSERT(!Platform::getPlatformByName("OpenCL").supportsKernels(names));
        Platform::loadPluginLibrary(REPARAM_OPENCL_PLUGIN);
        REPARAM_ASSERT(Platform::getPlatformByName("OpenCL").supportsKernels(names));
        Platform::loadPluginLibrary(REPARAM_OPENCL_PLUGIN);  // loading it again changes nothing
        std::unique_ptr<System> system(createChainSystem(false, false));
        {
            VerletIntegrator integrator(0.001);
            try {
                Context probe(*system, integrator, Platform::getPlatformByName("OpenCL"));
            }
            catch (const OpenMMException& e) {
                return skip(std::string("no usable OpenCL device: ") + e.what());
            }
        }
        int kernels, programs;
        FireStageOutcome outcome = runOnNewContext(*system, kernels, programs);
        REPARAM_ASSERT(outcome.stopReason == "converged");
        REPARAM_ASSERT(outcome.finalEnergy < outcome.initialEnergy);
        REPARAM_ASSERT(outcome.finalRmsForce <= 1.0 && outcome.iterations > 10);
        // That Context is gone, and its kernel with it: a new Context (maybe at the same address) makes its own.
        int moreKernels, morePrograms;
        runOnNewContext(*system, moreKernels, morePrograms);
        REPARAM_ASSERT(moreKernels == kernels + 1 && morePrograms == programs + 1);
    }
    catch (const std::exception& e) {
        std::cout << "FAILED: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
#endif
}
