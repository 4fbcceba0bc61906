/* The stop request and the SIGINT watch (see StopRequest.h). */
#include "StopRequest.h"
#include <atomic>
#include <cerrno>
#include <csignal>
#include <mutex>
#include <signal.h>

using namespace ReparamPlugin;

namespace {

static_assert(ATOMIC_INT_LOCK_FREE == 2, "the stop flag must be lock-free to be set from a signal handler");

std::atomic<int> requested(0);
std::mutex watchLock;
int watchers = 0;                 // active watches in the process (guarded by watchLock)
struct sigaction previousAction;  // the SIGINT action before the first watch (guarded by watchLock)
thread_local int watchingHere = 0;

extern "C" void onInterrupt(int signal, siginfo_t* info, void* context) {
    int savedErrno = errno;
    bool again = requested.exchange(1) != 0;
    if (previousAction.sa_flags & SA_SIGINFO) {
        if (previousAction.sa_sigaction != NULL)
            previousAction.sa_sigaction(signal, info, context);
    }
    else if (previousAction.sa_handler == SIG_DFL) {
        if (again) {  // a second SIGINT while stopping: what it would have done without the watch
            struct sigaction defaultAction = {};
            defaultAction.sa_handler = SIG_DFL;
            sigemptyset(&defaultAction.sa_mask);
            sigaction(SIGINT, &defaultAction, NULL);
            raise(SIGINT);
        }
    }
    else if (previousAction.sa_handler != SIG_IGN)
        previousAction.sa_handler(signal);
    errno = savedErrno;
}

bool handlerIsOurs() {
    struct sigaction current;
    if (sigaction(SIGINT, NULL, &current) != 0)
        return false;
    return (current.sa_flags & SA_SIGINFO) && current.sa_sigaction == onInterrupt;
}

} // namespace

void ReparamPlugin::requestStop() {
    requested.store(1);
}

bool ReparamPlugin::stopRequested() {
    return watchingHere > 0 && requested.load(std::memory_order_relaxed) != 0;
}

void ReparamPlugin::clearStopRequest() {
    requested.store(0);
}

void ReparamPlugin::beginInterruptWatch() {
    std::lock_guard<std::mutex> lock(watchLock);
    watchingHere++;
    if (watchers++ > 0)
        return;
    requested.store(0);
    struct sigaction action = {};
    if (sigaction(SIGINT, NULL, &previousAction) != 0)
        return;
    action.sa_sigaction = onInterrupt;
    action.sa_mask = previousAction.sa_mask;
    action.sa_flags = SA_SIGINFO | (previousAction.sa_flags & (SA_RESTART | SA_ONSTACK));
    sigaction(SIGINT, &action, NULL);
}

void ReparamPlugin::endInterruptWatch() {
    std::lock_guard<std::mutex> lock(watchLock);
    if (watchingHere > 0)
        watchingHere--;
    if (watchers == 0 || --watchers > 0)
        return;
    if (handlerIsOurs())
        sigaction(SIGINT, &previousAction, NULL);
    requested.store(0);
}

int ReparamPlugin::interruptWatchCount() {
    std::lock_guard<std::mutex> lock(watchLock);
    return watchers;
}
