#ifndef OPENMM_REPARAM_CPU_FORCE_FALLBACK_H_
#define OPENMM_REPARAM_CPU_FORCE_FALLBACK_H_
/**
 * CpuForceFallback: the energy and forces of an evaluation whose forces overflowed the device, computed again on
 * the CPU platform, as OpenMM's own minimizer does (CommonMinimizeKernel::evaluateCpu, OpenMM 8.2+).
 *
 * The OpenCL, CUDA and HIP platforms accumulate forces in 64-bit fixed point (scale 2^32), so a force component
 * beyond 2^31 kJ/mol/nm (two atoms almost on top of each other) wraps around silently. The device stages flag a
 * component beyond 2^30 on a movable particle, OpenMM's test (DeviceConstraintProjection::loadForces), and then
 * take the energy and forces at the same positions from a Context of the same System on the CPU platform
 * (Reference where there is none), made on first need, with the Context's parameters and periodic box; the
 * forces replace the device's in the stage's force array, so the stage's step follows the true forces.
 *
 * In single precision the stages' sums are floats, which overflow near 1e19 kJ/mol/nm (a sum of squared forces
 * beyond 3.4e38): there the forces are scaled down together, all by one factor, so that the largest is
 * SingleForceLimit; the direction of the step is kept (Adam's clipping and FIRE's largest step make the steps
 * of such a clash depend on little else), and the energy is the CPU platform's. Mixed and double precision take
 * the forces as they are.
 */
#include "openmm/Context.h"
#include "openmm/VerletIntegrator.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/internal/ContextImpl.h"
#include <memory>
#include <vector>

namespace ReparamPlugin {

class CpuForceFallback {
public:
    /** The largest force (kJ/mol/nm) handed to a single-precision stage: 2^40, 500 times the fixed-point range,
     *  far below float's (a sum of squares over a million atoms stays below 1e31). */
    static const double SingleForceLimit;
    explicit CpuForceFallback(OpenMM::ComputeContext& cc);
    /** The energy (force groups groups) at context's positions on the CPU platform; forces (3 mixed values per
     *  posq row, the stage's force array) get its forces (scaled to SingleForceLimit in single precision);
     *  maxForce: the largest atomic force on a movable particle (kJ/mol/nm), as computed. */
    double evaluate(OpenMM::ContextImpl& context, int groups, OpenMM::ComputeArray& forces, double& maxForce);
    /** A new stage starts (the stage kernels are kept per Context): the count of evaluations restarts. */
    void startStage() { evaluations = 0; }
    /** How many evaluations this object has computed on the CPU platform since the stage started. */
    int getNumEvaluations() const { return evaluations; }
private:
    OpenMM::ComputeContext& cc;
    OpenMM::VerletIntegrator integrator;
    std::unique_ptr<OpenMM::Context> cpuContext;
    int evaluations;
};

} // namespace ReparamPlugin

#endif
