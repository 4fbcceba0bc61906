#ifndef OPENMM_REPARAM_ENERGY_BRIDGE_H_
#define OPENMM_REPARAM_ENERGY_BRIDGE_H_

/**
 * EnergyBridge: evaluate the force-field loss of candidate positions X on an OpenMM Context.
 *
 * Same numerics as the Python engine (openmm_reparam/core/bridge.py):
 *  1. rows of fixed particles (mass 0 or virtual sites) are replaced by their start positions;
 *  2. set positions; if the System has constraints, apply them (constraint tolerance) and read back Xp;
 *  3. compute virtual sites if there are any;
 *  4. energy E and forces F from the Context, restricted to the integration force groups;
 *  5. loss = E + 0.5 k_c sum |X - Xp|^2 over movable atoms (only with constraints);
 *     grad = -F_perp + k_c (X - Xp), zero rows for fixed particles, where F_perp is F without its components
 *     along the constraints (ConstraintProjector; F_perp = F without constraints).
 * The start (step 1's positions of fixed particles) is the Context's positions when the bridge is created.
 * A non-finite energy or force throws NonFiniteEnergyException.
 */

#include "openmm/Context.h"
#include "openmm/Vec3.h"
#include "ConstraintProjector.h"
#include <ATen/ATen.h>
#include <vector>

namespace ReparamPlugin {

class EnergyBridge {
public:
    /**
     * @param context           the Context to evaluate on
     * @param constraintTol     tolerance for applyConstraints
     * @param groups            force-group bit mask for the energy and forces
     * @param constraintStiffness k_c in kJ/mol/nm^2
     */
    EnergyBridge(OpenMM::Context& context, double constraintTol, int groups, double constraintStiffness);
    /**
     * Evaluate the loss of X ((N,3) float64 CPU tensor, nm). Writes dloss/dX into grad ((N,3) float64 CPU,
     * allocated if undefined) and the potential energy into energy. The evaluated positions Xp stay
     * available through getPositions().
     */
    double evaluate(const at::Tensor& X, at::Tensor& grad, double& energy);
    /** Positions of the last evaluation (after constraints and virtual sites). */
    const std::vector<OpenMM::Vec3>& getPositions() const { return evaluated; }
    /** Current positions of the Context as an (N,3) float64 tensor. */
    at::Tensor currentPositions();
    /** Put positions into the Context (used to restore the best positions of a stage). */
    void setContextPositions(const std::vector<OpenMM::Vec3>& positions);
    int getNumParticles() const { return numParticles; }
    /** Largest per-atom force magnitude (raw forces, movable particles) of the last evaluation. */
    double getLastMaxForce() const { return lastMaxForce; }
    /** ‖F‖₂/√N of the last evaluation's forces projected off the constraints, over the movable atoms. */
    double getLastRmsForce() const { return lastRmsForce; }
    /** True if two movable particles of positions are at most distance nm apart (a force-field singularity;
     *  as core.atoms.has_collapsed_contact without forces). distance <= 0: false. */
    bool hasCollapsedContact(const std::vector<OpenMM::Vec3>& positions, double distance) const;
    /** Forces of the last evaluation (raw, before the constraint projection). */
    const std::vector<OpenMM::Vec3>& getForces() const { return forces; }
    bool getHasConstraints() const { return hasConstraints; }
private:
    OpenMM::Context& context;
    double constraintTol, stiffness, lastMaxForce, lastRmsForce;
    ConstraintProjector projector;
    int groups, numParticles;
    bool hasConstraints, hasVirtualSites, anyFixed;
    std::vector<bool> fixed;
    std::vector<OpenMM::Vec3> start, candidate, evaluated, forces, projected;
};

} // namespace ReparamPlugin

#endif
