#ifndef OPENMM_REPARAM_DEVICE_FIRE_STAGE_H_
#define OPENMM_REPARAM_DEVICE_FIRE_STAGE_H_
/**
 * runDeviceFireStage: runFireStage's FIRE 2.0 iteration (FireStage.h, the same steps and branches) with
 * positions, forces, velocities and the constraint projection on the Context's device (platforms/common,
 * CommonDeviceFireKernel; registered per platform like the device Adam stage). Each step downloads the energy
 * and one reduction (F.F, F.v, v.v); the scalar rules (dt, alpha, N+, N-, the stop reasons) run on the host.
 * No reporter: the engine uses runFireStage when one is given. |v| after the velocity step is computed from
 * those sums (v.v + 2 dt F.v + dt^2 F.F) instead of summed again, which differs from the host by rounding.
 */
#include "FireStage.h"
#include "FireStageSettings.h"
#include "openmm/Context.h"
#include "openmm/KernelImpl.h"
#include "openmm/internal/ContextImpl.h"
#include <string>

namespace ReparamPlugin {

/** The platform kernel behind runDeviceFireStage (one implementation: CommonDeviceFireKernel). */
class DeviceFireKernel : public OpenMM::KernelImpl {
public:
    static std::string Name() { return "ReparamDeviceFireStage"; }
    DeviceFireKernel(const std::string& name, const OpenMM::Platform& platform) : OpenMM::KernelImpl(name, platform) {}
    /** One stage from the Context's current positions (settings already validated). */
    virtual FireStageOutcome run(OpenMM::ContextImpl& context, const FireStageSettings& settings, double tolerance) = 0;
};

/** Whether context's platform has a device FIRE kernel registered. */
bool deviceFireAvailable(OpenMM::Context& context);

/** One FIRE stage on context's device; throws OpenMMException where it cannot run, NonFiniteEnergyException
 *  when the start has a non-finite energy or force. */
FireStageOutcome runDeviceFireStage(OpenMM::Context& context, const FireStageSettings& settings, double tolerance);

} // namespace ReparamPlugin

#endif
