/* StageStopRules: the scalar stop rules of an Adam stage, host and device (see StageStopRules.h). */
#include "StageStopRules.h"
#include <algorithm>
#include <cmath>
#include <limits>

using namespace ReparamPlugin;

const char* ReparamPlugin::verdictName(StepVerdict verdict) {
    switch (verdict) {
        case StepVerdict::Collapse: return "collapse";
        case StepVerdict::Stalled: return "stalled";
        case StepVerdict::Patience: return "patience";
        case StepVerdict::Converged: return "converged";
        default: return "";
    }
}

StageStopRules::StageStopRules(const AdamStageSettings& settings) : settings(settings), haveBest(false),
        bestEnergy(std::numeric_limits<double>::infinity()), calmest(std::numeric_limits<double>::infinity()),
        largestDrop(0.0), waited(0) {
}

bool StageStopRules::suspect(double maxForce) {
    calmest = std::min(calmest, maxForce);
    return maxForce > settings.spikeFactor * calmest;
}

bool StageStopRules::improves(double energy, bool isSuspect) {
    bool better = !isSuspect && (!haveBest || energy < bestEnergy - settings.relTol * std::fabs(bestEnergy));
    if (better) {
        bestEnergy = energy;
        haveBest = true;
        waited = 0;
    }
    else
        waited++;
    double previous = lowest.empty() ? std::numeric_limits<double>::infinity() : lowest.back();
    lowest.push_back(isSuspect ? previous : std::min(previous, energy));
    return better;
}

bool StageStopRules::converged(double energy, double rmsForce, bool& isBest) {
    isBest = false;
    if (!(settings.forceTolerance > 0) || rmsForce > settings.forceTolerance)
        return false;
    if (!haveBest || energy <= bestEnergy) {
        bestEnergy = energy;
        haveBest = true;
        isBest = true;
    }
    return true;
}

StepVerdict StageStopRules::verdict() {
    int window = settings.progressWindow;
    if (window > 0 && (int) lowest.size() > window) {
        double before = lowest[lowest.size() - window - 1];
        if (std::isfinite(before)) {
            double drop = before - lowest.back();
            largestDrop = std::max(largestDrop, drop);
            if (drop < settings.progressFraction * largestDrop)
                return StepVerdict::Stalled;
        }
    }
    return waited >= settings.patience ? StepVerdict::Patience : StepVerdict::Continue;
}
