#ifndef OPENMM_REPARAM_MOVABLE_PARTICLES_H_
#define OPENMM_REPARAM_MOVABLE_PARTICLES_H_
/* Which particles a stage moves: virtual sites and massless particles stay fixed. One rule for the host stages,
 * EnergyBridge and the device stages. */
#include "openmm/System.h"
#include <vector>

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

/** The movable particles' indices, ascending. */
inline std::vector<int> movableIndices(const OpenMM::System& system) {
    std::vector<int> indices;
    for (int i = 0; i < system.getNumParticles(); i++)
        if (isMovable(system, i))
            indices.push_back(i);
    return indices;
}

} // namespace ReparamPlugin

#endif
