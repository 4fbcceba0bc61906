#ifndef OPENMM_REPARAM_CONTEXT_ACCESS_H_
#define OPENMM_REPARAM_CONTEXT_ACCESS_H_

/**
 * Reach a Context's ContextImpl from plugin code.
 *
 * Context::getImpl() is private, but OpenMM grants Force subclasses access through the protected
 * Force::getContextImpl(); this tiny Force (never added to a System) exposes exactly that, so the engine can
 * call calcForcesAndEnergy()/getForces() without building a State on every step.
 */

#include "openmm/Force.h"
#include "openmm/Context.h"
#include "openmm/internal/ContextImpl.h"

namespace ReparamPlugin {

class ContextAccess : public OpenMM::Force {
public:
    static OpenMM::ContextImpl& impl(OpenMM::Context& context) {
        static ContextAccess access;
        return access.getContextImpl(context);
    }
protected:
    OpenMM::ForceImpl* createImpl() const override {
        return nullptr;
    }
};

} // namespace ReparamPlugin

#endif
