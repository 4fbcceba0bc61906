#ifndef OPENMM_REPARAM_COMMON_DEVICE_PRECON_KERNEL_H_
#define OPENMM_REPARAM_COMMON_DEVICE_PRECON_KERNEL_H_
/**
 * CommonDevicePreconKernel: DevicePreconKernel on OpenMM's common compute API, one source for CUDA and OpenCL
 * (see DevicePreconStage.h for what stays on the device, PreconStage.h for the steps): PreconDriver's loop over
 * this class's PreconVectorOps, whose vectors are ComputeArrays and whose arithmetic is the precon kernels
 * (kernels/precon.cc). The two loops' coefficients stay on the device (no download per pair).
 *
 * P^-1 on the device: PreconMatrix's envelope factor L D L^T is uploaded once per stage and solved by forward,
 * diagonal and backward substitution, one work item per Cartesian component (3 work items, serial over the
 * rows: exactly the host's arithmetic). Its cost is the envelope's size, which is small for the implicit-solvent
 * and vacuum proteins precon is the default for (atoms come residue by residue); a parallel solve (level
 * scheduling or a block-diagonal P) would be the next step for large systems. A P without off-diagonal entries
 * (P = mu I, the projected L-BFGS) is a division per coordinate in parallel.
 */
#include "CpuForceFallback.h"
#include "DeviceConstraintProjection.h"
#include "DevicePreconStage.h"
#include "PreconDriver.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include <string>
#include <vector>

namespace ReparamPlugin {

class CommonDevicePreconKernel : public DevicePreconKernel, private PreconVectorOps {
public:
    CommonDevicePreconKernel(const std::string& name, const OpenMM::Platform& platform, OpenMM::ComputeContext& cc);
    PreconStageOutcome run(OpenMM::ContextImpl& context, const PreconStageSettings& settings,
                           const PreconMatrix& precon, const std::vector<int>& coupled, double tolerance) override;
private:
    // PreconVectorOps (PreconDriver.h)
    int getNumMovable() const override { return numMovable; }
    int getNumCoupled() const override { return numCoupled; }
    bool evaluateStart(double& energy) override;
    std::string startFailure() const override;
    double gradientSquared() override { return squaredNorm; }
    void startDirection() override;
    void firstLoop(int slot, double rho, int index) override;
    void applyInversePreconditioner() override { solve(directionArray); }
    void scaleDirection(int slot, double numerator) override;
    void secondLoop(int slot, double rho, int index) override;
    void negateDirection() override;
    void searchStart(double& slope, double& longest) override;
    double trialSlope() override;
    bool evaluateTrial(double alpha, double& energy) override;
    void accept(int slot, double& sy, double& ss, double& yy) override;
    void setAnchor() override;
    double anchorDistance() override;

    void setup(const PreconStageSettings& settings, const PreconMatrix& precon, const std::vector<int>& coupled);
    void uploadPrecon(const PreconMatrix& precon);
    void createKernels(OpenMM::ComputeProgram& program);
    /** Run a partial-reduction kernel and finish its slots into results[offset ...]. */
    void reduce(OpenMM::ComputeKernel& partialKernel, int numSums, int numMaxes, OpenMM::ComputeArray& results,
                int offset);
    /** coefficients[index] = a[aOffset ..] . b[bOffset ..] on the device. */
    void dot(OpenMM::ComputeArray& a, int aOffset, OpenMM::ComputeArray& b, int bOffset, int index);
    /** The first count values of stats, as doubles. */
    std::vector<double> downloadStats(int count);
    /** Constraints, energy, projected forces and the trial gradient at posq (the energy and forces on the CPU
     *  platform where the device's overflowed: CpuForceFallback); false if not finite. */
    bool evaluate(double& energy, double& squaredNorm);
    void solve(OpenMM::ComputeArray& v);
    void moveTo(double alpha);
    OpenMM::ComputeContext& cc;
    OpenMM::ContextImpl* context;
    bool isSetup, mixedIsDouble, diagonalOnly;
    int blockSize, numBlocks, numMovable, numCoupled, memory, groups;
    double tol, squaredNorm, trialSquaredNorm;
    DeviceConstraintProjection projection;
    CpuForceFallback cpuForces;
    OpenMM::ComputeArray movableIndex, x, gradient, trialGradient, directionArray, solved, sMemory, yMemory,
            partial, stats, coefficients, envelopeFirst, envelopeStart, envelopeLower, envelopeDiagonal,
            coupledIndex, anchor;
    OpenMM::ComputeKernel finishStatsKernel, finishCoefficientKernel, dotKernel, trialGradientKernel,
            lineSearchKernel, trialSlopeKernel, moveKernel, acceptKernel, acceptStartKernel, copyKernel,
            firstLoopKernel, scaleKernel, secondLoopKernel, negateKernel, envelopeKernel, diagonalKernel,
            anchorKernel, distanceKernel;
};

} // namespace ReparamPlugin

#endif
