#ifndef OPENMM_REPARAM_DEVICE_ADAM_STAGE_H_
#define OPENMM_REPARAM_DEVICE_ADAM_STAGE_H_
/**
 * runDeviceAdamStage: the Adam stage on the coordinates with positions, forces, the Adam moments and the
 * constraints on the Context's device (OpenCL or CUDA), written once on OpenMM's common compute API
 * (platforms/common, CommonDeviceAdamKernel) and registered per platform (platforms/opencl, platforms/cuda).
 *
 * A step: apply the constraints and virtual sites on the device (ContextImpl::applyConstraints) -> forces and
 * energy on the device (ContextImpl::calcForcesAndEnergy) -> one reduction (the gradient's 2-norm for the
 * clipping, the largest atomic raw force, the RMS projected force), downloaded with the energy -> best point
 * kept on the device -> the clipped Adam update of posq on the device. The stop rules are runAdamStage's
 * (max_steps, patience, stalled, deadline, collapse, converged at forceTolerance), decided on the host from
 * those scalars. The Context is left at the best positions, constraints applied. No reporter: the engine uses
 * the host stage when one is given.
 *
 * Constraints as the host stage (EnergyBridge): each step evaluates the constrained positions, the gradient is
 * the orthogonal projection of the forces onto the constraints' tangent space (DeviceConstraintProjection, the
 * host's ConstraintProjector on the device) plus the spring pulling the unconstrained candidate onto the
 * constraints, clipped as a whole. The arithmetic is the platform's (single, mixed or double precision).
 */
#include "AdamStage.h"
#include "AdamStageSettings.h"
#include "ReparamGenerator.h"
#include "openmm/Context.h"
#include "openmm/KernelImpl.h"
#include "openmm/internal/ContextImpl.h"
#include <string>

namespace ReparamPlugin {

/** The platform kernel behind runDeviceAdamStage and runDeviceGeneratorStage (one implementation:
 *  CommonDeviceAdamKernel). */
class DeviceAdamKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() { return "ReparamDeviceAdamStage"; }
    DeviceAdamKernel(const std::string& name, const OpenMM::Platform& platform) : OpenMM::KernelImpl(name, platform) {}
    /** One stage (settings already validated): on the coordinates from the Context's positions, or (generator
     *  validated, not NULL) on the generator's parameters for its rows from G(theta) and on the coordinates for
     *  the other particles (a solute generator's solvent, from its coordinates parameter). */
    virtual AdamStageOutcome run(OpenMM::ContextImpl& context, const AdamStageSettings& settings,
                                 ReparamGenerator* generator) = 0;
};

/** The largest connected group of constraints the device stages project by one dense solve in a work item's
 *  own memory (a heavy atom and its hydrogens, a rigid water: at most 4); larger ones (HAngles and AllBonds join
 *  a molecule's constraints into one group) by conjugate gradients, one work item per group. */
const int DeviceMaxConstraintGroup = 12;

/** Whether context's platform has a device Adam kernel registered (openmm_reparam.engines.device registers it). */
bool deviceAdamAvailable(OpenMM::Context& context);

/** One Adam stage on the coordinates on context's device; throws OpenMMException where none is registered. */
AdamStageOutcome runDeviceAdamStage(OpenMM::Context& context, const AdamStageSettings& settings);

/**
 * One reparametrized Adam stage on context's device: runAdamStage with a generator (kind "linear" or "gnn",
 * with or without solvent), without a reporter. The generator's buffers and parameters go to the device once;
 * each step puts its rows at G(theta) (the GNN's layers as device kernels), evaluates there, and reduces the
 * parameter gradient J^T g on the device (DeviceGeneratorKernels); the solvent takes the coordinate step beside
 * theta, clipped together, as on the host. The Context is left at the best positions; the generator gets the
 * parameters after the last step (as the host stage leaves it) and, for the solvent coordinates, the solvent's
 * best positions. Same stop rules and constraint handling as runDeviceAdamStage (deviceAdamAvailable).
 */
AdamStageOutcome runDeviceGeneratorStage(OpenMM::Context& context, ReparamGenerator& generator,
                                         const AdamStageSettings& settings);

} // namespace ReparamPlugin

#endif
