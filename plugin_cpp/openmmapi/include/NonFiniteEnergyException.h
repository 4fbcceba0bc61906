#ifndef OPENMM_REPARAM_NON_FINITE_ENERGY_EXCEPTION_H_
#define OPENMM_REPARAM_NON_FINITE_ENERGY_EXCEPTION_H_

/**
 * Thrown when the force field returns a NaN or infinite energy or force. Its own type so that the Python
 * bindings map it to openmm_reparam.core.errors.NonFiniteEnergyError by type, never by message text.
 */

#include "openmm/OpenMMException.h"
#include <string>

namespace ReparamPlugin {

class NonFiniteEnergyException : public OpenMM::OpenMMException {
public:
    explicit NonFiniteEnergyException(const std::string& message) : OpenMM::OpenMMException(message) {
    }
};

} // namespace ReparamPlugin

#endif
