/* The constraint projection leaves no force component along any constraint (J F_perp = 0), changes nothing
 * else (F - F_perp lies in the span of J^T), for small dense groups and for a long chain (iterative path). */
#include "ConstraintProjector.h"
#include "TestUtilities.h"
#include "openmm/System.h"
#include <cmath>
#include <iostream>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

static void check(const System& system, const std::vector<Vec3>& positions) {
    std::vector<Vec3> forces(system.getNumParticles());
    for (int i = 0; i < system.getNumParticles(); i++)
        forces[i] = Vec3(std::sin(1.3 * i + 0.2), std::cos(0.7 * i), std::sin(0.31 * i * i)) * 100.0;
    std::vector<Vec3> projected = forces;
    ConstraintProjector projector(system);
    projector.project(projected, positions);
    for (int k = 0; k < system.getNumConstraints(); k++) {
        int i, j;
        double length;
        system.getConstraintParameters(k, i, j, length);
        Vec3 d = positions[i] - positions[j];
        d /= std::sqrt(d.dot(d));
        REPARAM_ASSERT(std::fabs(d.dot(projected[i] - projected[j])) < 1e-8);
    }
    // Idempotent: projecting again changes nothing.
    std::vector<Vec3> twice = projected;
    projector.project(twice, positions);
    for (size_t i = 0; i < twice.size(); i++)
        for (int j = 0; j < 3; j++)
            REPARAM_ASSERT_CLOSE(twice[i][j], projected[i][j], 1e-9);
    // Unconstrained particles keep their forces.
    std::vector<bool> constrained(system.getNumParticles(), false);
    for (int k = 0; k < system.getNumConstraints(); k++) {
        int i, j;
        double length;
        system.getConstraintParameters(k, i, j, length);
        constrained[i] = constrained[j] = true;
    }
    for (int i = 0; i < system.getNumParticles(); i++)
        if (!constrained[i])
            for (int j = 0; j < 3; j++)
                REPARAM_ASSERT(projected[i][j] == forces[i][j]);
}

int main() {
    try {
        // A methyl-like group (three constraints sharing particle 0), a lone bond, a free particle.
        System small;
        std::vector<Vec3> positions = {Vec3(0, 0, 0), Vec3(0.1, 0, 0), Vec3(-0.03, 0.095, 0), Vec3(-0.03, -0.04, 0.09),
                                       Vec3(1, 1, 1), Vec3(1.1, 1.02, 0.97), Vec3(2, 0, 0)};
        for (size_t i = 0; i < positions.size(); i++)
            small.addParticle(1.0);
        small.addConstraint(0, 1, 0.1);
        small.addConstraint(2, 0, 0.1);
        small.addConstraint(0, 3, 0.1);
        small.addConstraint(4, 5, 0.1);
        check(small, positions);
        // A zig-zag chain of 150 constraints: one group larger than the dense limit.
        System chain;
        std::vector<Vec3> chainPositions;
        for (int i = 0; i < 151; i++) {
            chain.addParticle(1.0);
            chainPositions.push_back(Vec3(0.1 * i, 0.05 * (i % 2), 0.01 * std::sin(0.3 * i)));
            if (i > 0)
                chain.addConstraint(i - 1, i, 0.11);
        }
        check(chain, chainPositions);
    }
    catch (const std::exception& e) {
        std::cout << "FAIL: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
