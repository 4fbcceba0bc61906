#ifndef OPENMM_REPARAM_TIMING_H_
#define OPENMM_REPARAM_TIMING_H_

/** Timing helpers for benchmarks/overhead.py: the cost of a bare force evaluation, measured in C++. */

#include "openmm/Context.h"

namespace ReparamPlugin {

/**
 * Mean wall-clock seconds of one Context::getState(State::Energy | State::Forces) on the integration force
 * groups, over repeats calls (after one untimed warm-up call). The reference cost a reparametrized step is
 * compared with.
 */
double timeForceEvaluation(OpenMM::Context& context, int repeats);

} // namespace ReparamPlugin

#endif
