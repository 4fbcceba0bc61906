#ifndef OPENMM_REPARAM_STAGE_CLOCK_H_
#define OPENMM_REPARAM_STAGE_CLOCK_H_
/* The clock every stage (host and device) times its steps, deadline and wall time with. */
#include <chrono>

namespace ReparamPlugin {

typedef std::chrono::steady_clock Clock;

/** Seconds from t to now. */
inline double secondsSince(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

} // namespace ReparamPlugin

#endif
