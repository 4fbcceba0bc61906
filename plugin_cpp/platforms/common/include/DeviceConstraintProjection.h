#ifndef OPENMM_REPARAM_DEVICE_CONSTRAINT_PROJECTION_H_
#define OPENMM_REPARAM_DEVICE_CONSTRAINT_PROJECTION_H_
/**
 * DeviceConstraintProjection: what the device stages share, on OpenMM's common compute API. It owns the forces
 * of the current evaluation as a mixed array (3 per posq row, out of OpenMM's fixed-point force buffer) and
 * projects them, or any per-atom array, orthogonally onto the tangent space of the constraints: F - J^T lambda
 * with (J J^T) lambda = J F solved exactly per connected group of constraints (one work item per group; the
 * host engine's ConstraintProjector, same elimination); groups of more than DeviceMaxConstraintGroup constraints
 * (HAngles, AllBonds) by conjugate gradients, one work item per group (the host's solveIterative).
 *
 * Its kernel source (kernels/projection.cc) is compiled together with the stage's own kernels, which
 * use its loadPosition, storePosition and minimumImage.
 */
#include "openmm/System.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include "openmm/common/ComputeProgram.h"
#include "openmm/common/ComputeVectorTypes.h"
#include <map>
#include <string>
#include <vector>

namespace ReparamPlugin {

class DeviceConstraintProjection {
public:
    /** Upload the constraint groups of system and add this part's defines (before compiling the program). */
    void initialize(OpenMM::ComputeContext& cc, const OpenMM::System& system,
                    std::map<std::string, std::string>& defines);
    /** Create the kernels from the compiled program (it contains kernels/projection.cc). */
    void createKernels(OpenMM::ComputeProgram& program);
    /** forces = the forces of the last evaluation (rows of posq); whether a component on a movable particle is
     *  beyond 2^30 kJ/mol/nm, where OpenMM's fixed-point sums may have wrapped around (CpuForceFallback). */
    bool loadForces();
    /** values (3 per atom: by posq row, or by original atom index when byOrder) projected in place, at the
     *  current positions. Nothing without constraints. */
    void project(OpenMM::ComputeArray& values, bool byOrder);
    bool hasConstraints() const { return numGroups + numLargeGroups > 0; }
    OpenMM::ComputeArray& getForces() { return forces; }
    /** The periodic box (reduced form) as kernel arguments at index, index+1, ..., index+3: periodic flag and
     *  the three box vectors (mixed4); minimumImage in the kernels takes them in this order. */
    void setBoxArgs(OpenMM::ComputeKernel& kernel, int index);
    static const char* kernelSource();
private:
    void upload(OpenMM::ComputeArray& starts, OpenMM::ComputeArray& pairs, const std::vector<int>& startValues,
                const std::vector<OpenMM::mm_int2>& pairValues, const std::string& name);
    OpenMM::ComputeContext* cc = nullptr;
    int numGroups = 0, numLargeGroups = 0;
    bool mixedIsDouble = false;
    OpenMM::ComputeArray forces, overflow, groupStart, pairs, largeGroupStart, largePairs, scratch, atomWork;
    OpenMM::ComputeKernel loadKernel, projectKernel, largeKernel;
};

} // namespace ReparamPlugin

#endif
