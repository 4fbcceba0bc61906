#ifndef OPENMM_REPARAM_DEVICE_KERNEL_ARGS_H_
#define OPENMM_REPARAM_DEVICE_KERNEL_ARGS_H_
/* Setting a kernel argument of type "mixed" (the platform's accumulation precision: double in double and mixed
 * precision, float in single), shared by the device stages. */
#include "openmm/common/ComputeKernel.h"

namespace ReparamPlugin {

inline void setMixedArg(OpenMM::ComputeKernel& kernel, int index, double value, bool mixedIsDouble) {
    if (mixedIsDouble)
        kernel->setArg(index, value);
    else
        kernel->setArg(index, (float) value);
}

} // namespace ReparamPlugin

#endif
