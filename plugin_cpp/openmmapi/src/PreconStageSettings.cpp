/* PreconStageSettings: unset until Python fills them, then validated (see PreconStageSettings.h). */
#include "PreconStageSettings.h"
#include "openmm/OpenMMException.h"
#include <cmath>
#include <sstream>

using namespace ReparamPlugin;

namespace {

void require(bool ok, const char* field, const char* rule, double value) {
    if (!ok) {
        std::stringstream msg;
        msg << "PreconStageSettings." << field << " must be " << rule << ", got " << value
            << (std::isnan(value) || value == -1 ? " (unset: the values come from Python)" : "");
        throw OpenMM::OpenMMException(msg.str());
    }
}

} // namespace

PreconStageSettings::PreconStageSettings() : maxSteps(-1), memory(-1), rebuildDistance(NAN), maxStep(NAN),
        toleranceFactor(NAN), timeLimit(NAN) {
}

void PreconStageSettings::validate() const {
    if (name.empty())
        throw OpenMM::OpenMMException("PreconStageSettings.name must be set (the stage name)");
    require(maxSteps >= 0, "maxSteps", ">= 0", maxSteps);
    require(memory >= 1, "memory", ">= 1", memory);
    require(rebuildDistance > 0, "rebuildDistance", "> 0 (inf: never)", rebuildDistance);
    require(maxStep > 0 && std::isfinite(maxStep), "maxStep", "> 0", maxStep);
    require(toleranceFactor > 0 && std::isfinite(toleranceFactor), "toleranceFactor", "> 0", toleranceFactor);
    require(!std::isnan(timeLimit), "timeLimit", "seconds (< 0: no limit)", timeLimit);
}

std::vector<std::string> PreconStageSettings::fieldNames() {
    return {"name", "maxSteps", "memory", "rebuildDistance", "maxStep", "toleranceFactor", "timeLimit"};
}
