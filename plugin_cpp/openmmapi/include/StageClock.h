#ifndef OPENMM_REPARAM_STAGE_CLOCK_H_
#define OPENMM_REPARAM_STAGE_CLOCK_H_
/* The clock every stage (host and device) times its steps, deadline and wall time with, and the check at the top
 * of every stage loop. */
#include "StopRequest.h"
#include <chrono>

namespace ReparamPlugin {

typedef std::chrono::steady_clock Clock;

/** Seconds from t to now. */
inline double secondsSince(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

/**
 * Why a stage loop must stop before its next step: "interrupted" when a stop was requested (StopRequest.h),
 * "deadline" when timeLimit seconds (none when negative) have passed since start, nullptr to go on.
 */
inline const char* stopBeforeStep(double timeLimit, Clock::time_point start) {
    if (stopRequested())
        return "interrupted";
    if (timeLimit >= 0 && secondsSince(start) >= timeLimit)
        return "deadline";
    return nullptr;
}

} // namespace ReparamPlugin

#endif
