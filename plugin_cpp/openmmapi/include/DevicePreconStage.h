#ifndef OPENMM_REPARAM_DEVICE_PRECON_STAGE_H_
#define OPENMM_REPARAM_DEVICE_PRECON_STAGE_H_
/**
 * runDevicePreconStage: PreconStage's preconditioned L-BFGS (PreconStage.h: the same steps, branches and stop
 * reasons) with the iterate x, the gradient g = -F_perp of the movable atoms, the trial point, the direction,
 * the (s, y) memory and the solve of P on the Context's device (platforms/common, CommonDevicePreconKernel;
 * registered per platform like the device Adam and FIRE stages). The two-loop recursion's dot products are
 * reduced on the device into a small device array its updates read, so a direction needs no download; per
 * line-search trial the energy and |g'|^2 come back, per step the slope and longest |d_atom|, s.y, |s|^2, |y|^2
 * and (with coupled atoms) the longest move since P was built. The scalar rules run on the host.
 *
 * Rebuilds: the stage stops "rebuild" after the step that moved a coupled atom farther than rebuildDistance
 * (that step recorded), leaving that iterate in the Context; the caller builds P there and runs a new stage,
 * which evaluates its start again (one more evaluation than the host stage, counted in its energyEvaluations)
 * and starts with an empty memory, as the host stage does after setPreconditioner().
 *
 * No reporter (the engine uses PreconStage when one is given). The Context is left at the final iterate,
 * constraints and virtual sites applied. NonFiniteEnergyException when the start's energy or forces are not
 * finite. The arithmetic is the platform's (double, mixed or single); the dot products are tree sums, so in
 * double precision the steps agree with the host stage's to rounding.
 */
#include "PreconMatrix.h"
#include "PreconStage.h"
#include "PreconStageSettings.h"
#include "openmm/Context.h"
#include "openmm/KernelImpl.h"
#include "openmm/internal/ContextImpl.h"
#include <string>
#include <vector>

namespace ReparamPlugin {

/** The platform kernel behind runDevicePreconStage (one implementation: CommonDevicePreconKernel). */
class DevicePreconKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() { return "ReparamDevicePreconStage"; }
    DevicePreconKernel(const std::string& name, const OpenMM::Platform& platform) : OpenMM::KernelImpl(name, platform) {}
    /** One stage from the Context's current positions (settings already validated; P has one row per movable
     *  particle, in particle order; coupled: particle indices). */
    virtual PreconStageOutcome run(OpenMM::ContextImpl& context, const PreconStageSettings& settings,
                                   const PreconMatrix& precon, const std::vector<int>& coupled, double tolerance) = 0;
};

/** Whether context's platform has a device precon kernel registered. */
bool devicePreconAvailable(OpenMM::Context& context);

/** One precon stage on context's device, up to settings.maxSteps steps or the first rebuild; throws
 *  OpenMMException where it cannot run, NonFiniteEnergyException when the start is not finite. */
PreconStageOutcome runDevicePreconStage(OpenMM::Context& context, const PreconStageSettings& settings,
                                        const PreconMatrix& precon, const std::vector<int>& coupled, double tolerance);

} // namespace ReparamPlugin

#endif
