#ifndef OPENMM_REPARAM_STOP_REPORTER_H_
#define OPENMM_REPARAM_STOP_REPORTER_H_
/**
 * OpenMM's own L-BFGS (LocalEnergyMinimizer) made stoppable with no Python in its loop. A Python reporter costs
 * about 2 ms an iteration (SWIG converts the positions and the gradient at every call), so the L-BFGS stages ran
 * without one and could not be stopped; StopReporter is a C++ MinimizationReporter that only asks OpenMM to stop
 * once the stop request is set (StopRequest.h) or its time limit has passed, and records each iteration's energy.
 *
 * OpenMM ends its L-BFGS when a reporter asks, except with constraints: if they are not yet met it tightens its
 * restraints and starts another round, and when tightening stops helping it goes back to the round's start
 * positions. runLocalEnergyMinimizer therefore keeps the lowest "system energy" an iteration reported and, when
 * the run was stopped, leaves those positions (constraints applied) where they are lower than what OpenMM left.
 */
#include "openmm/Context.h"
#include "openmm/LocalEnergyMinimizer.h"
#include "StageClock.h"
#include <map>
#include <string>
#include <vector>

namespace ReparamPlugin {

class StopReporter : public OpenMM::MinimizationReporter {
public:
    /** timeLimit: seconds from now (< 0: none). */
    explicit StopReporter(double timeLimit);
    /** Record the iteration; true (stop) once the stop request is set or the time limit has passed. */
    bool report(int iteration, const std::vector<double>& x, const std::vector<double>& grad,
                std::map<std::string, double>& args);
    /** "" (not stopped), "interrupted" or "deadline". */
    const std::string& getStopReason() const { return stopReason; }
    int getIterations() const { return (int) energies.size(); }
    /** The lowest "system energy" reported (infinity before any report) and its positions (3N values, nm). */
    double getBestEnergy() const { return bestEnergy; }
    const std::vector<double>& getBestPositions() const { return bestPositions; }
    const std::vector<double>& getEnergies() const { return energies; }
    /** Seconds from construction to each report. */
    const std::vector<double>& getTimes() const { return times; }
    /** The last report's positions and gradient (3N values each; empty before any report). */
    const std::vector<double>& getLastPositions() const { return lastPositions; }
    const std::vector<double>& getLastGradient() const { return lastGradient; }
private:
    Clock::time_point start;
    double timeLimit, bestEnergy;
    std::string stopReason;
    std::vector<double> bestPositions, energies, times, lastPositions, lastGradient;
};

/** What one runLocalEnergyMinimizer call did. */
class LocalMinimizerOutcome {
public:
    LocalMinimizerOutcome();
    int iterations;          ///< iterations OpenMM reported (all its restraint rounds)
    double wallTime;         ///< seconds
    std::string stopReason;  ///< "" (OpenMM finished), "interrupted" or "deadline"
    int getHistorySize() const { return (int) energies.size(); }
#ifndef SWIG
    std::vector<double> energies;       ///< "system energy" of each iteration
    std::vector<double> times;          ///< seconds from the call to each iteration
    std::vector<double> lastPositions;  ///< the last report's positions (3N, nm; empty without a report), which
                                        ///< the caller may take as the final state's where the Context holds them
    std::vector<double> lastGradient;   ///< and its gradient (kJ/mol/nm; the restraint's included with constraints)
#endif
};

/**
 * LocalEnergyMinimizer::minimize(context, tolerance, maxIterations) with a StopReporter(timeLimit); when it was
 * stopped, the lowest-energy iterate it reported is left in the Context (constraints and virtual sites applied)
 * if that is lower than where OpenMM stopped. Returns at once (no iteration) if the stop request is already set
 * or timeLimit is 0.
 */
LocalMinimizerOutcome runLocalEnergyMinimizer(OpenMM::Context& context, double tolerance, int maxIterations,
                                              double timeLimit);

} // namespace ReparamPlugin

#endif
