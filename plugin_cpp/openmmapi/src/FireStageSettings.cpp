/* FireStageSettings: unset until Python fills them, then validated (see FireStageSettings.h). */
#include "FireStageSettings.h"
#include "openmm/OpenMMException.h"
#include <cmath>
#include <sstream>

using namespace ReparamPlugin;

namespace {

void require(bool ok, const char* field, const char* rule, double value) {
    if (!ok) {
        std::stringstream msg;
        msg << "FireStageSettings." << field << " must be " << rule << ", got " << value
            << (std::isnan(value) || value == -1 ? " (unset: the values come from Python)" : "");
        throw OpenMM::OpenMMException(msg.str());
    }
}

} // namespace

FireStageSettings::FireStageSettings() : maxSteps(-1), dt(NAN), dtMax(NAN), dtMin(NAN), nDelay(-1), fInc(NAN),
        fDec(NAN), alphaStart(NAN), fAlpha(NAN), maxUphill(-1), maxStep(NAN), toleranceFactor(NAN),
        initialDelay(-1), timeLimit(NAN) {
}

void FireStageSettings::validate() const {
    if (name.empty())
        throw OpenMM::OpenMMException("FireStageSettings.name must be set (the stage name)");
    require(maxSteps >= 0, "maxSteps", ">= 0", maxSteps);
    require(dt > 0 && std::isfinite(dt), "dt", "> 0", dt);
    require(dtMax >= dt && std::isfinite(dtMax), "dtMax", ">= dt", dtMax);
    require(dtMin >= 0 && dtMin <= dt, "dtMin", "within [0, dt]", dtMin);
    require(nDelay >= 0, "nDelay", ">= 0", nDelay);
    require(fInc >= 1 && std::isfinite(fInc), "fInc", ">= 1", fInc);
    require(fDec > 0 && fDec < 1, "fDec", "within (0, 1)", fDec);
    require(alphaStart >= 0 && alphaStart <= 1, "alphaStart", "within [0, 1]", alphaStart);
    require(fAlpha > 0 && fAlpha <= 1, "fAlpha", "within (0, 1]", fAlpha);
    require(maxUphill >= 0, "maxUphill", ">= 0", maxUphill);
    require(maxStep > 0 && std::isfinite(maxStep), "maxStep", "> 0", maxStep);
    require(toleranceFactor > 0 && std::isfinite(toleranceFactor), "toleranceFactor", "> 0", toleranceFactor);
    require(initialDelay == 0 || initialDelay == 1, "initialDelay", "0 or 1", initialDelay);
    require(!std::isnan(timeLimit), "timeLimit", "seconds (< 0: no limit)", timeLimit);
}

std::vector<std::string> FireStageSettings::fieldNames() {
    return {"name", "maxSteps", "dt", "dtMax", "dtMin", "nDelay", "fInc", "fDec", "alphaStart", "fAlpha",
            "maxUphill", "maxStep", "toleranceFactor", "initialDelay", "timeLimit"};
}
