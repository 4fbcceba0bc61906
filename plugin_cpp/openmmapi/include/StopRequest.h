#ifndef OPENMM_REPARAM_STOP_REQUEST_H_
#define OPENMM_REPARAM_STOP_REQUEST_H_
/**
 * One stop request for every stage: a process-wide flag that every stage loop (host and device: Adam on the
 * coordinates or on a generator's parameters, FIRE, the preconditioned and projected L-BFGS, ReparamIntegrator's
 * steps, OpenMM's L-BFGS through StopReporter) reads once per step. A stage that finds it set ends with stop
 * reason "interrupted" and leaves its best positions in the Context, as when a reporter stops it.
 *
 * The flag is set by requestStop(), which is async-signal-safe, and by the SIGINT handler that
 * beginInterruptWatch() installs. That handler sets the flag and then calls the handler that was installed before
 * it (CPython's, in a Python process, so that Python still learns of the signal and runs its own handler); where
 * that was the default action, a second SIGINT while the flag is set takes the default action (the process ends).
 * The watch is reference-counted: the handler is installed by the first beginInterruptWatch() and the previous
 * one restored by the last endInterruptWatch() (unless someone replaced the handler meanwhile: theirs is kept).
 *
 * Only a thread that watches heeds the request (stopRequested() is false elsewhere): a run in another thread
 * (a Dask worker's) goes on when the watching thread is interrupted. The flag is cleared when the first watch
 * begins and when the last one ends, and by clearStopRequest().
 */

namespace ReparamPlugin {

/** Ask the stages of the watching threads to stop (async-signal-safe). */
void requestStop();

/** Whether a stop was requested and this thread watches (beginInterruptWatch() called in it, not yet ended). */
bool stopRequested();

/** Forget a stop request. */
void clearStopRequest();

/** Start watching SIGINT in this thread (see the file comment); pair every call with endInterruptWatch(). */
void beginInterruptWatch();

/** Stop watching SIGINT in this thread; the last one in the process puts the previous handler back. */
void endInterruptWatch();

/** How many watches are active in the process (0: the plugin's SIGINT handler is not installed). */
int interruptWatchCount();

/** beginInterruptWatch() for the lifetime of the object. */
class InterruptWatch {
public:
    InterruptWatch() {
        beginInterruptWatch();
    }
    ~InterruptWatch() {
        endInterruptWatch();
    }
    InterruptWatch(const InterruptWatch&) = delete;
    InterruptWatch& operator=(const InterruptWatch&) = delete;
};

} // namespace ReparamPlugin

#endif
