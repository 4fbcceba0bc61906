#ifndef OPENMM_REPARAM_DEVICE_KERNEL_CACHE_H_
#define OPENMM_REPARAM_DEVICE_KERNEL_CACHE_H_
/**
 * The device stages' kernels, one per Context and stage, kept between calls: the first stage on a Context makes
 * the kernel (and the kernel compiles its program on its first run), later stages on that Context, and the
 * precon stage after each rebuild of P, reuse it, so they compile no program and create no kernel. A stage whose
 * program depends on more than the Context (a generator stage: the generator's shapes) names a variant, and
 * gets a kernel per Context and variant.
 *
 * Lifetime: the kept kernels own device arrays of the Context's ComputeContext, so they must go before it does.
 * The platform libraries (platforms/common, CommonDeviceKernels.cpp) add, to each ComputeContext they make a kernel
 * for, a listener that the ComputeContext owns and deletes first thing in its destructor (while its device memory
 * is still there); its destructor calls releaseDeviceKernels for the Context. A Context that is destroyed or
 * reinitialized thus frees its kernels, and a new Context at the same address starts with none.
 */
#include "openmm/Kernel.h"
#include "openmm/internal/ContextImpl.h"
#include <string>

namespace ReparamPlugin {

/** The kernel called name for context and variant: the one kept for them, or a new one from context's platform
 *  (kept). */
OpenMM::Kernel cachedDeviceKernel(OpenMM::ContextImpl& context, const std::string& name,
                                  const std::string& variant = "");

/** A new kernel called name for context, not kept. */
OpenMM::Kernel newDeviceKernel(OpenMM::ContextImpl& context, const std::string& name);

/** Free the kernels kept for context (called when its ComputeContext is destroyed). */
void releaseDeviceKernels(const OpenMM::ContextImpl* context);

/** Record that a device stage compiled a program (the platform libraries call it on each compilation). */
void countDeviceProgramCompiled();

/** How many device stage kernels this process has created and device stage programs it has compiled: a second
 *  stage on a Context adds to neither. */
struct DeviceStageCounts {
    int kernelsCreated;
    int programsCompiled;
};
DeviceStageCounts getDeviceStageCounts();

} // namespace ReparamPlugin

#endif
