#ifndef OPENMM_REPARAM_CONSTRAINT_PROJECTOR_H_
#define OPENMM_REPARAM_CONSTRAINT_PROJECTOR_H_

/**
 * ConstraintProjector: removes from forces their components along the constrained distances, F - J^T lambda
 * with lambda the least-squares multipliers (J: one row per constraint, +d on its first particle and -d on its
 * second, d the unit vector between them). The C++ twin of bridge.ConstraintProjector (which solves the same
 * least-squares problem with scipy's lsqr): here the normal equations (J J^T) lambda = J F are solved exactly,
 * one connected group of constraints at a time (a heavy atom and its hydrogens, a rigid water), so the cost is
 * linear in the number of constraints for HBonds-type constraints.
 */

#include "openmm/System.h"
#include "openmm/Vec3.h"
#include <vector>

namespace ReparamPlugin {

class ConstraintProjector {
public:
    explicit ConstraintProjector(const OpenMM::System& system);
    bool empty() const { return first.empty(); }
    /** Replace forces by their projection, the constraint directions taken at positions. */
    void project(std::vector<OpenMM::Vec3>& forces, const std::vector<OpenMM::Vec3>& positions) const;
    /** The connected groups (constraint indices) and each constraint's two particles (the device stages
     *  upload them: platforms/common DeviceConstraintProjection). */
    const std::vector<std::vector<int> >& getGroups() const { return groups; }
    int getFirst(int constraint) const { return first[constraint]; }
    int getSecond(int constraint) const { return second[constraint]; }
private:
    std::vector<int> first, second;
    std::vector<std::vector<int> > groups;  // constraint indices of each connected group
};

} // namespace ReparamPlugin

#endif
