/* StopReporter and runLocalEnergyMinimizer: OpenMM's L-BFGS, stoppable (see StopReporter.h). */
#include "StopReporter.h"
#include "StopRequest.h"
#include "openmm/Integrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/State.h"
#include <cmath>
#include <limits>

using namespace ReparamPlugin;
using namespace OpenMM;

StopReporter::StopReporter(double timeLimit) : start(Clock::now()), timeLimit(timeLimit),
        bestEnergy(std::numeric_limits<double>::infinity()) {
}

bool StopReporter::report(int iteration, const std::vector<double>& x, const std::vector<double>& grad,
                          std::map<std::string, double>& args) {
    double energy = args["system energy"];
    double seconds = secondsSince(start);
    energies.push_back(energy);
    times.push_back(seconds);
    lastPositions = x;
    lastGradient = grad;
    if (energy < bestEnergy) {
        bestEnergy = energy;
        bestPositions = x;
    }
    if (!std::isfinite(energy))
        stopReason = "non-finite";  // OpenMM's L-BFGS goes on iterating NaNs, without end when it has no cap
    else if (stopRequested())
        stopReason = "interrupted";
    else if (timeLimit >= 0 && seconds >= timeLimit)
        stopReason = "deadline";
    return !stopReason.empty();
}

LocalMinimizerOutcome::LocalMinimizerOutcome() : iterations(0), wallTime(0.0) {
}

namespace {

/** The potential energy, NaN where the platform refuses NaN coordinates. */
double potentialEnergy(Context& context) {
    int groups = context.getIntegrator().getIntegrationForceGroups();
    try {
        return context.getState(State::Energy, false, groups).getPotentialEnergy();
    }
    catch (const OpenMMException&) {
        return std::numeric_limits<double>::quiet_NaN();
    }
}

/** After a stop: the reporter's lowest iterate, on the constraints, where it is lower than what OpenMM left. */
void leaveLowest(Context& context, const StopReporter& reporter) {
    const std::vector<double>& x = reporter.getBestPositions();
    if (x.empty())
        return;
    std::vector<Vec3> left = context.getState(State::Positions).getPositions();
    double leftEnergy = potentialEnergy(context);
    if (std::isfinite(leftEnergy) && !(reporter.getBestEnergy() < leftEnergy))
        return;
    std::vector<Vec3> positions(left.size());
    for (size_t i = 0; i < positions.size(); i++)
        positions[i] = Vec3(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
    context.setPositions(positions);
    context.applyConstraints(context.getIntegrator().getConstraintTolerance());
    context.computeVirtualSites();
    if (std::isfinite(leftEnergy) && !(potentialEnergy(context) < leftEnergy))
        context.setPositions(left);  // the constraints' projection cost more than it gained
}

} // namespace

LocalMinimizerOutcome ReparamPlugin::runLocalEnergyMinimizer(Context& context, double tolerance, int maxIterations,
                                                             double timeLimit) {
    Clock::time_point start = Clock::now();
    LocalMinimizerOutcome outcome;
    if (stopRequested())
        outcome.stopReason = "interrupted";
    else if (timeLimit == 0)
        outcome.stopReason = "deadline";
    if (!outcome.stopReason.empty())
        return outcome;
    StopReporter reporter(timeLimit);
    LocalEnergyMinimizer::minimize(context, tolerance, maxIterations, &reporter);
    outcome.stopReason = reporter.getStopReason();
    if (!outcome.stopReason.empty())
        leaveLowest(context, reporter);
    outcome.iterations = reporter.getIterations();
    outcome.energies = reporter.getEnergies();
    outcome.times = reporter.getTimes();
    outcome.lastPositions = reporter.getLastPositions();
    outcome.lastGradient = reporter.getLastGradient();
    outcome.wallTime = secondsSince(start);
    return outcome;
}
