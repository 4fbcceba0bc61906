/* Timing helpers (see ReparamTiming.h). */
#include "ReparamTiming.h"
#include "openmm/Integrator.h"
#include "openmm/State.h"
#include <chrono>

using namespace OpenMM;

double ReparamPlugin::timeForceEvaluation(Context& context, int repeats) {
    int groups = context.getIntegrator().getIntegrationForceGroups();
    context.getState(State::Energy | State::Forces, false, groups);
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; i++)
        context.getState(State::Energy | State::Forces, false, groups);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / std::max(1, repeats);
}
