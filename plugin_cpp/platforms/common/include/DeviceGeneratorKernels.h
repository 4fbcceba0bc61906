#ifndef OPENMM_REPARAM_DEVICE_GENERATOR_KERNELS_H_
#define OPENMM_REPARAM_DEVICE_GENERATOR_KERNELS_H_
/**
 * DeviceGeneratorKernels: the generator part of a reparametrized device stage (runDeviceGeneratorStage,
 * CommonDeviceAdamKernel with a ReparamGenerator) on OpenMM's common compute API. It holds the generator on the
 * device (its buffers, its parameters as one flat array in the host generator's order, the gradient of that
 * array) and two fixed sequences of kernel launches, built once per stage:
 *
 *   positions   the generator's rows at G(theta)      linear: X0 + V z;   gnn: the layers
 *               H_{l+1} = tanh(V (V^T H_l) W_l + H_l S_l + b_l), then center + scale ([H_0|...|H_L] W_out + b_out)
 *               + residual (ReparamGenerator's functions, the same operations in the same order)
 *   gradient    dtheta = J^T g for the rows' stage gradient g (adamGradient), by the chain rule written out:
 *               the readout, then back through each layer (tanh, W, S, b, and V V^T)
 *
 * All of it is made of six kernels (kernels/generator.cc): placeRows, rowGradient, and dense products
 * of small blocks. The particles outside the generator (a solute generator's solvent) have row -1.
 */
#include "ReparamGenerator.h"
#include "DeviceConstraintProjection.h"
#include "openmm/common/ComputeArray.h"
#include "openmm/common/ComputeContext.h"
#include "openmm/common/ComputeKernel.h"
#include <map>
#include <string>
#include <vector>

namespace ReparamPlugin {

class DeviceGeneratorKernels {
public:
    /** Arrays for generator's shapes (validated) on cc's device, in its mixed precision (double when
     *  mixedIsDouble), and generator's values in them (load). */
    DeviceGeneratorKernels(OpenMM::ComputeContext& cc, const ReparamGenerator& generator, bool mixedIsDouble);
    /** Whether generator has the shapes these kernels were made for (kind, layers, modes, parameter sizes). */
    bool sameShapes(const ReparamGenerator& generator) const;
    /** Upload generator's values (modes, parameters, offset, rows, scale): a kernel kept for a Context runs a
     *  later generator of the same shapes without compiling. Throws if the shapes differ. */
    void load(const ReparamGenerator& generator);
    /** HAS_GENERATOR and the sizes the kernels are compiled for. */
    void addDefines(std::map<std::string, std::string>& defines) const;
    /** Build the two launch sequences from the compiled program; forces: the projected forces (3 per posq row),
     *  candidate: the unconstrained positions of the step (by original index). */
    void createKernels(OpenMM::ComputeProgram& program, OpenMM::ComputeArray& forces, OpenMM::ComputeArray& candidate);
    /** The spring's stiffness and the periodic box (per stage). */
    void setRunArgs(double stiffness, DeviceConstraintProjection& projection);
    /** The rows at G(theta), before an evaluation. */
    void computePositions();
    /** The parameters' gradient J^T g, after an evaluation (forces projected). */
    void computeGradient();
    OpenMM::ComputeArray& getRows() { return rows; }
    OpenMM::ComputeArray& getParameters() { return parameters; }
    OpenMM::ComputeArray& getGradient() { return gradient; }
    int getNumParameters() const { return numParameters; }
    /** The device's parameters into generator's own (inner) parameters. */
    void copyParametersTo(ReparamGenerator& generator);
private:
    struct Launch {
        OpenMM::ComputeKernel kernel;
        int threads, blockSize;
    };
    /** An array in the mixed precision, written by the kernels before it is read. */
    void scratch(OpenMM::ComputeArray& array, int size, const std::string& name);
    void uploadMixed(OpenMM::ComputeArray& array, const std::vector<double>& values, const std::string& name);
    void buildLinear(OpenMM::ComputeProgram& program);
    void buildGnn(OpenMM::ComputeProgram& program);
    void reduceRows(OpenMM::ComputeProgram& program, std::vector<Launch>& into, OpenMM::ComputeArray& out, int o,
                    OpenMM::ComputeArray& left, int l, int leftStride, OpenMM::ComputeArray& right, int q,
                    int rightStride, int a, int b);
    void rowsTimes(OpenMM::ComputeProgram& program, std::vector<Launch>& into, OpenMM::ComputeArray& out, int o,
                   OpenMM::ComputeArray& left, int l, int a, OpenMM::ComputeArray& right, int q, int b,
                   bool transposed, bool accumulate);
    /** H_l as (array, offset): H_0 is the latent, the first parameter; H_1..H_L are in hidden. */
    OpenMM::ComputeArray& layer(int l, int& offset);
    OpenMM::ComputeContext& cc;
    bool mixedIsDouble, isGnn;
    int numRows, numModes, hiddenSize, numLayers, numParameters;
    double scale;
    std::vector<int> parameterOffsets, parameterSizes;
    OpenMM::ComputeArray rows, parameters, gradient, modes, offset, y, dy, zeros, ones;
    OpenMM::ComputeArray hidden, propagated, small, hiddenGradient, preGradient, product;
    OpenMM::ComputeKernel placeKernel, rowGradientKernel;
    std::vector<Launch> forward, backward;
};

} // namespace ReparamPlugin

#endif
