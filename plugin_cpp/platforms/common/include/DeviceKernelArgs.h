#ifndef OPENMM_REPARAM_DEVICE_KERNEL_ARGS_H_
#define OPENMM_REPARAM_DEVICE_KERNEL_ARGS_H_
/* Setting a kernel argument of type "mixed" (the platform's accumulation precision: double in double and mixed
 * precision, float in single), the work groups of a reduction, and compiling a program (counted), shared by the
 * device stages. */
#include "DeviceKernelCache.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include <algorithm>
#include <map>
#include <string>

namespace ReparamPlugin {

inline void setMixedArg(OpenMM::ComputeKernel& kernel, int index, double value, bool mixedIsDouble) {
    if (mixedIsDouble)
        kernel->setArg(index, value);
    else
        kernel->setArg(index, (float) value);
}

/** Work groups of a two-pass reduction over count items in groups of blockSize: at most 64, and at most what the
 *  platform launches. OpenMM caps every launch at ComputeContext::getNumThreadBlocks() groups (12 on pocl with
 *  2 compute units, 6 per unit), and the finishing pass reads one partial result per group: a group count above
 *  the cap would read partial results no group wrote. */
inline int reductionBlocks(const OpenMM::ComputeContext& cc, int count, int blockSize) {
    return std::max(1, std::min(std::min(64, cc.getNumThreadBlocks()), (count + blockSize - 1) / blockSize));
}

/** cc.compileProgram(source, defines), counted in getDeviceStageCounts(). */
inline OpenMM::ComputeProgram compileDeviceProgram(OpenMM::ComputeContext& cc, const std::string& source,
                                                   const std::map<std::string, std::string>& defines) {
    countDeviceProgramCompiled();
    return cc.compileProgram(source, defines);
}

} // namespace ReparamPlugin

#endif
