/* The bent chain the C++ stage tests minimize (Reference platform): ChainLength particles, bonds of rest length
 * 0.15 nm (the first one a constraint if asked), every non-bonded pair repelling as 1/r^2, the last particle
 * massless (fixed) if asked; and its start, a wavy line 0.11 nm a bond (compressed, so it must relax). */
#ifndef REPARAM_TEST_CHAIN_H_
#define REPARAM_TEST_CHAIN_H_

#include "OpenMM.h"
#include <cmath>
#include <vector>

const int ChainLength = 12;

/** The chain's System (the caller owns it). */
inline OpenMM::System* createChainSystem(bool constrainFirstBond, bool fixLast = false) {
    OpenMM::System* system = new OpenMM::System();
    OpenMM::HarmonicBondForce* bonds = new OpenMM::HarmonicBondForce();
    OpenMM::CustomNonbondedForce* repulsion = new OpenMM::CustomNonbondedForce("0.05/r^2");
    for (int i = 0; i < ChainLength; i++) {
        system->addParticle(fixLast && i == ChainLength - 1 ? 0.0 : 12.0);
        repulsion->addParticle();
    }
    for (int i = 0; i < ChainLength - 1; i++) {
        if (constrainFirstBond && i == 0)
            system->addConstraint(0, 1, 0.15);
        else
            bonds->addBond(i, i + 1, 0.15, 5e4);
        repulsion->addExclusion(i, i + 1);
    }
    system->addForce(bonds);
    system->addForce(repulsion);
    return system;
}

/** The chain's start positions (nm). */
inline std::vector<OpenMM::Vec3> chainStartPositions() {
    std::vector<OpenMM::Vec3> positions;
    for (int i = 0; i < ChainLength; i++)
        positions.push_back(OpenMM::Vec3(0.11 * i, 0.04 * std::sin(1.7 * i), 0.03 * std::cos(0.9 * i)));
    return positions;
}

#endif
