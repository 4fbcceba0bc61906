/* AdamStageSettings: unset until Python fills them, then validated (see AdamStageSettings.h). */
#include "AdamStageSettings.h"
#include "openmm/OpenMMException.h"
#include <cmath>
#include <sstream>

using namespace ReparamPlugin;

namespace {

void require(bool ok, const char* field, const char* rule, double value) {
    if (!ok) {
        std::stringstream msg;
        msg << "AdamStageSettings." << field << " must be " << rule << ", got " << value
            << (std::isnan(value) || value == -1 ? " (unset: the values come from Python's MinimizerOptions)" : "");
        throw OpenMM::OpenMMException(msg.str());
    }
}

} // namespace

AdamStageSettings::AdamStageSettings() : lr(NAN), clipNorm(NAN), relTol(NAN), collapseDistance(NAN),
        spikeFactor(NAN), constraintStiffness(NAN), torchThreads(-1), maxSteps(-1), patience(-1),
        progressWindow(-1), progressFraction(NAN), forceTolerance(NAN), timeLimit(NAN) {
}

void AdamStageSettings::validateStep() const {
    require(lr > 0, "lr", "> 0", lr);
    require(clipNorm > 0, "clipNorm", "> 0", clipNorm);
    require(relTol >= 0, "relTol", ">= 0", relTol);
    require(std::isfinite(collapseDistance), "collapseDistance", "finite (<= 0: off)", collapseDistance);
    require(spikeFactor > 0, "spikeFactor", "> 0", spikeFactor);
    require(constraintStiffness >= 0, "constraintStiffness", ">= 0", constraintStiffness);
    require(torchThreads >= 1, "torchThreads", ">= 1", torchThreads);
}

void AdamStageSettings::validate() const {
    validateStep();
    if (name.empty())
        throw OpenMM::OpenMMException("AdamStageSettings.name must be set (the stage name)");
    require(maxSteps >= 0, "maxSteps", ">= 0", maxSteps);
    require(patience >= 0, "patience", ">= 0", patience);
    require(progressWindow >= 0, "progressWindow", ">= 0", progressWindow);
    require(progressFraction >= 0 && progressFraction <= 1, "progressFraction", "within [0, 1]", progressFraction);
    require(forceTolerance >= 0, "forceTolerance", ">= 0 (0: off)", forceTolerance);
    require(!std::isnan(timeLimit), "timeLimit", "seconds (< 0: no limit)", timeLimit);
}

std::vector<std::string> AdamStageSettings::fieldNames() {
    return {"lr", "clipNorm", "relTol", "collapseDistance", "spikeFactor", "constraintStiffness", "torchThreads",
            "name", "maxSteps", "patience", "progressWindow", "progressFraction", "forceTolerance",
            "timeLimit"};
}
