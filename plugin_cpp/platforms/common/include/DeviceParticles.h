#ifndef OPENMM_REPARAM_DEVICE_PARTICLES_H_
#define OPENMM_REPARAM_DEVICE_PARTICLES_H_
/* Which particles the device stages move: the host's EnergyBridge rule (virtual sites and massless particles
 * stay fixed), shared by the device stages. */
#include "openmm/System.h"

namespace ReparamPlugin {

inline bool isMovable(const OpenMM::System& system, int i) {
    return !system.isVirtualSite(i) && system.getParticleMass(i) != 0.0;
}

inline int countMovable(const OpenMM::System& system) {
    int count = 0;
    for (int i = 0; i < system.getNumParticles(); i++)
        count += isMovable(system, i);
    return count;
}

} // namespace ReparamPlugin

#endif
