/* The device stages' kernels kept per Context (see DeviceKernelCache.h). */
#include "DeviceKernelCache.h"
#include "openmm/Platform.h"
#include <atomic>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {
struct Cache {
    std::mutex lock;
    std::map<std::tuple<const ContextImpl*, std::string, std::string>, Kernel> kernels;  // context, name, variant
};

/** Never destroyed: a Context may die after static destructors ran (at the end of a Python process). */
Cache& cache() {
    static Cache* instance = new Cache();
    return *instance;
}

std::atomic<int> kernelsCreated(0), programsCompiled(0);
} // namespace

Kernel ReparamPlugin::newDeviceKernel(ContextImpl& context, const std::string& name) {
    Kernel kernel = context.getPlatform().createKernel(name, context);
    kernelsCreated++;
    return kernel;
}

Kernel ReparamPlugin::cachedDeviceKernel(ContextImpl& context, const std::string& name, const std::string& variant) {
    Cache& kept = cache();
    std::lock_guard<std::mutex> guard(kept.lock);
    auto key = std::make_tuple((const ContextImpl*) &context, name, variant);
    auto found = kept.kernels.find(key);
    if (found != kept.kernels.end())
        return found->second;
    Kernel kernel = newDeviceKernel(context, name);
    kept.kernels[key] = kernel;
    return kernel;
}

void ReparamPlugin::releaseDeviceKernels(const ContextImpl* context) {
    std::vector<Kernel> released;  // destroyed after the lock is let go
    Cache& kept = cache();
    std::lock_guard<std::mutex> guard(kept.lock);
    for (auto entry = kept.kernels.begin(); entry != kept.kernels.end();) {
        if (std::get<0>(entry->first) == context) {
            released.push_back(entry->second);
            entry = kept.kernels.erase(entry);
        }
        else
            ++entry;
    }
}

void ReparamPlugin::countDeviceProgramCompiled() {
    programsCompiled++;
}

DeviceStageCounts ReparamPlugin::getDeviceStageCounts() {
    DeviceStageCounts counts;
    counts.kernelsCreated = kernelsCreated;
    counts.programsCompiled = programsCompiled;
    return counts;
}
