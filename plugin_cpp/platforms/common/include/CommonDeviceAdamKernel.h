#ifndef OPENMM_REPARAM_COMMON_DEVICE_ADAM_KERNEL_H_
#define OPENMM_REPARAM_COMMON_DEVICE_ADAM_KERNEL_H_
/**
 * CommonDeviceAdamKernel: DeviceAdamKernel on OpenMM's common compute API (ComputeContext, ComputeArray,
 * ComputeKernel), one source for the CUDA and OpenCL platforms; each platform's factory (platforms/<name>)
 * hands it the platform's ComputeContext. See DeviceAdamStage.h for the step. The loop is runAdamDriver's
 * (AdamDriver.h): the kernel is its device AdamStageOps, on ComputeArrays and the Adam kernels. With a
 * generator (a reparametrized stage) the program is compiled with HAS_GENERATOR and DeviceGeneratorKernels' kernels: the generator's rows at
 * G(theta) before each evaluation, dtheta = J^T g after it, Adam on theta beside the coordinates' Adam.
 */
#include "AdamDriver.h"
#include "CpuForceFallback.h"
#include "DeviceAdamStage.h"
#include "DeviceConstraintProjection.h"
#include "DeviceGeneratorKernels.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include <memory>
#include <string>
#include <vector>

namespace ReparamPlugin {

class CommonDeviceAdamKernel : public DeviceAdamKernel, private AdamStageOps {
public:
    CommonDeviceAdamKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::ComputeContext& cc,
                           const std::string& platformLabel);
    AdamStageOutcome run(OpenMM::ContextImpl& context, const AdamStageSettings& settings,
                         ReparamGenerator* generator) override;
private:
    void setup(const ReparamGenerator* generator);
    void createKernels(OpenMM::ComputeProgram& program);
    /** Set up (once), the generator's values uploaded (a kept generator kernel: same shapes), the run's
     *  arguments, the moments cleared, the Context at the generator's output. */
    void prepare(OpenMM::ContextImpl& context, const AdamStageSettings& settings, const ReparamGenerator* generator);
    /** AdamStageOps. evaluate: the generator's rows placed, the candidate kept, constraints applied, forces and
     *  energy (on the CPU platform where the device's overflowed: CpuForceFallback), the gradient's statistics
     *  (maxForce: the largest atomic raw force; rmsForce: the RMS projected force over the movable particles,
     *  the host's measure); throws on NaN. */
    AdamEvaluation evaluate() override;
    /** Whether the Context's positions hold a collapsed contact (the host's guard, on suspect steps). */
    bool collapsedContact() override;
    /** The Context's (evaluated) positions into best. */
    void keepBest() override;
    /** One Adam step: the coordinates, and the generator's parameters in a generator stage. */
    void update(int step) override;
    /** The Context back at best (constraints applied), the trained parameters back into the generator, its
     *  solvent coordinates at the Context's positions. */
    void finish(bool haveBest) override;
    /** Put the Context at the generator's output (fixed particles kept), as the host stage's first step. */
    void startAtGenerator(OpenMM::ContextImpl& context, const ReparamGenerator& generator);
    /** The loaded forces projected onto the constraints, then the sum of the squared gradient components, the largest
     *  atomic raw force and the RMS projected force, reduced on the device and downloaded. */
    void gradientStats(double& sumSquares, double& maxForce, double& rmsForce);
    /** Per-run arguments: the spring's stiffness and the periodic box. */
    void setRunArgs(double stiffness);
    OpenMM::ComputeContext& cc;
    std::string label;
    bool isSetup, mixedIsDouble;
    // The run's Context, settings and generator, for the AdamStageOps calls.
    OpenMM::ContextImpl* runContext;
    const AdamStageSettings* runSettings;
    ReparamGenerator* runGenerator;
    double tol;
    int groups;
    int blockSize, numBlocks, numMovable;
    DeviceConstraintProjection projection;
    CpuForceFallback cpuForces;
    std::unique_ptr<DeviceGeneratorKernels> generatorKernels;
    OpenMM::ComputeArray moment1, moment2, best, reduceBuffer, stats, candidate;
    OpenMM::ComputeArray noRows, noGradient, parameterMoment1, parameterMoment2;  // placeholders without a generator
    OpenMM::ComputeKernel statsKernel, finishKernel, updateKernel, saveKernel, restoreKernel, candidateKernel;
    OpenMM::ComputeKernel parameterUpdateKernel;
};

} // namespace ReparamPlugin

#endif
