#ifndef OPENMM_REPARAM_DEVICE_ADAM_STAGE_H_
#define OPENMM_REPARAM_DEVICE_ADAM_STAGE_H_
/**
 * runDeviceAdamStage: the Adam stage on the coordinates with positions, forces, the Adam moments and the
 * constraints on the Context's device (OpenCL, CUDA, HIP), written once on OpenMM's common compute API
 * (platforms/common, CommonDeviceAdamKernel) and registered per platform (platforms/opencl, platforms/cuda).
 *
 * A step: apply the constraints and virtual sites on the device (ContextImpl::applyConstraints) -> forces and
 * energy on the device (ContextImpl::calcForcesAndEnergy) -> one reduction (the gradient's 2-norm for the
 * clipping, the largest atomic raw force), downloaded with the energy -> best point kept on the
 * device -> the clipped Adam update of posq on the device. The stop rules are runAdamStage's (max_steps,
 * patience, stalled, deadline, collapse), decided on the host from those scalars. The Context is left at the
 * best positions, constraints applied. No reporter: the engine uses the host stage when one is given.
 *
 * Constraints as the host stage (EnergyBridge): each step evaluates the constrained positions, the gradient is
 * the orthogonal projection of the forces onto the constraints' tangent space (DeviceConstraintProjection, the
 * host's ConstraintProjector on the device) plus the spring pulling the unconstrained candidate onto the
 * constraints, clipped as a whole. The arithmetic is the platform's (single, mixed or double precision).
 */
#include "AdamStage.h"
#include "AdamStageSettings.h"
#include "openmm/Context.h"
#include "openmm/KernelImpl.h"
#include "openmm/internal/ContextImpl.h"
#include <string>
#include <vector>

namespace ReparamPlugin {

/**
 * The linear generator X = X0 + V z of a linear reparametrized stage on the device (runDeviceLinearStage, the
 * host stage's ReparamGenerator "linear", alone or inside a SoluteGenerator). Row r is particle atoms[r] (its
 * original index), with V's row r (numModes values, modes[r * numModes + j]) and X0's row r (x0[3 r + k]);
 * z (numModes x 3) holds the starting parameters and, after the stage, the last ones (as the host stage leaves
 * its generator). Every other movable particle moves as plain coordinates (a SoluteGenerator's solvent): its
 * Adam step is the coordinate stage's, from its current position.
 */
struct DeviceLinearModes {
    int numModes = 0;
    std::vector<int> atoms;
    std::vector<double> modes, x0, z;
    /** Throws OpenMMException unless the sizes agree and every row is a distinct particle of numParticles. */
    void validate(int numParticles) const;
};

/** The platform kernel behind runDeviceAdamStage and runDeviceLinearStage (one implementation:
 *  CommonDeviceAdamKernel). */
class DeviceAdamKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() { return "ReparamDeviceAdamStage"; }
    DeviceAdamKernel(const std::string& name, const OpenMM::Platform& platform) : OpenMM::KernelImpl(name, platform) {}
    /** One stage from the Context's current positions (settings already validated): on the coordinates, or with
     *  linear (validated) on its parameters z for its rows and on the coordinates for the other particles. */
    virtual AdamStageOutcome run(OpenMM::ContextImpl& context, const AdamStageSettings& settings,
                                 DeviceLinearModes* linear) = 0;
};

/** The largest connected group of constraints the device stages project by one dense solve in a work item's
 *  own memory (a heavy atom and its hydrogens, a rigid water: at most 4); larger ones (HAngles and AllBonds join
 *  a molecule's constraints into one group) by conjugate gradients, one work item per group. */
const int DeviceMaxConstraintGroup = 12;

/** Whether context's platform has a device Adam kernel registered (openmm_reparam.engines.device registers it). */
bool deviceAdamAvailable(OpenMM::Context& context);

/** One Adam stage on the coordinates on context's device; throws OpenMMException where none is registered. */
AdamStageOutcome runDeviceAdamStage(OpenMM::Context& context, const AdamStageSettings& settings);

/** One linear reparametrized Adam stage on context's device (its rows at X0 + V z, Adam on z; the other movable
 *  particles as plain coordinates, clipped together with z as the host stage clips a SoluteGenerator's
 *  parameters). The Context is left at the best positions and linear.z at the last parameters. Same stop rules
 *  and constraint handling as runDeviceAdamStage; the kernel is runDeviceAdamStage's (deviceAdamAvailable). */
AdamStageOutcome runDeviceLinearStage(OpenMM::Context& context, const AdamStageSettings& settings,
                                      DeviceLinearModes& linear);

} // namespace ReparamPlugin

#endif
