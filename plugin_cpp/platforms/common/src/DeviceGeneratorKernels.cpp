/* DeviceGeneratorKernels: a ReparamGenerator's function and its gradient as device kernels (see
 * DeviceGeneratorKernels.h). */
#include "DeviceGeneratorKernels.h"
#include "DeviceKernelArgs.h"
#include "openmm/OpenMMException.h"
#include <algorithm>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {
const int ReduceBlockSize = 64;  // threads per entry of a reduction over the rows
const int MaxReduceGroups = 512;
} // namespace

DeviceGeneratorKernels::DeviceGeneratorKernels(ComputeContext& cc, const ReparamGenerator& generator,
                                               bool mixedIsDouble) :
        cc(cc), mixedIsDouble(mixedIsDouble), isGnn(generator.getKind() == "gnn"), numLayers(generator.getNumLayers()),
        scale(1.0) {
    std::vector<double> values;
    int rowCount, cols;
    generator.getBuffer("modes", values, rowCount, cols);
    numRows = rowCount;
    numModes = cols;
    numParameters = 0;
    for (int p = 0; p < generator.getNumInnerParameters(); p++) {
        generator.getParameter(p, values, rowCount, cols);
        parameterOffsets.push_back(numParameters);
        parameterSizes.push_back((int) values.size());
        numParameters += (int) values.size();
    }
    hiddenSize = isGnn ? parameterSizes[0] / numRows : 3;
    scratch(modes, numRows * numModes, "reparamGeneratorModes");
    scratch(parameters, numParameters, "reparamGeneratorParameters");
    scratch(gradient, numParameters, "reparamGeneratorGradient");
    scratch(offset, 3 * numRows, "reparamGeneratorOffset");
    scratch(y, 3 * numRows, "reparamGeneratorOutput");
    scratch(dy, 3 * numRows, "reparamGeneratorOutputGradient");
    uploadMixed(zeros, std::vector<double>(3, 0.0), "reparamGeneratorZeros");
    uploadMixed(ones, std::vector<double>(1, 1.0), "reparamGeneratorOnes");
    if (isGnn) {  // the layers' activations, their products and gradients
        int block = numRows * hiddenSize, layers = std::max(1, numLayers * block);
        scratch(hidden, layers, "reparamGeneratorHidden");
        scratch(propagated, layers, "reparamGeneratorPropagated");
        scratch(hiddenGradient, layers, "reparamGeneratorHiddenGradient");
        scratch(small, numModes * hiddenSize, "reparamGeneratorModeBlock");
        scratch(preGradient, block, "reparamGeneratorPreGradient");
        scratch(product, block, "reparamGeneratorProduct");
    }
    rows.initialize<int>(cc, cc.getNumAtoms(), "reparamGeneratorRows");
    load(generator);
}

bool DeviceGeneratorKernels::sameShapes(const ReparamGenerator& generator) const {
    std::vector<double> values;
    int rowCount, cols;
    generator.getBuffer("modes", values, rowCount, cols);
    if ((generator.getKind() == "gnn") != isGnn || generator.getNumLayers() != numLayers || rowCount != numRows ||
            cols != numModes || generator.getNumInnerParameters() != (int) parameterSizes.size())
        return false;
    for (int p = 0; p < generator.getNumInnerParameters(); p++) {
        generator.getParameter(p, values, rowCount, cols);
        if ((int) values.size() != parameterSizes[p])
            return false;
    }
    return true;
}

void DeviceGeneratorKernels::load(const ReparamGenerator& generator) {
    if (!sameShapes(generator))
        throw OpenMMException("DeviceGeneratorKernels: the generator's shapes differ from those compiled for");
    std::vector<double> values, flat;
    int rowCount, cols;
    generator.getBuffer("modes", values, rowCount, cols);
    modes.upload(values, true);  // converted to float in single precision
    for (int p = 0; p < generator.getNumInnerParameters(); p++) {
        generator.getParameter(p, values, rowCount, cols);
        flat.insert(flat.end(), values.begin(), values.end());
    }
    parameters.upload(flat, true);
    if (isGnn) {  // offset = center + residual
        std::vector<double> center;
        generator.getBuffer("center", center, rowCount, cols);
        generator.getBuffer("residual", values, rowCount, cols);
        for (size_t i = 0; i < values.size(); i++)
            values[i] += center[i % 3];
    }
    else
        generator.getBuffer("x0", values, rowCount, cols);
    offset.upload(values, true);
    scale = isGnn ? generator.getScale() : 1.0;
    std::vector<int> rowOf(cc.getNumAtoms(), -1), solute, solvent;
    generator.getSolvent(solute, solvent);
    for (int r = 0; r < numRows; r++)
        rowOf[solute.empty() ? r : solute[r]] = r;
    rows.upload(rowOf);
    if (placeKernel) {  // kernels built: the scale is one of their arguments
        setMixedArg(placeKernel, 9, scale, mixedIsDouble);
        setMixedArg(rowGradientKernel, 8, scale, mixedIsDouble);
    }
}

void DeviceGeneratorKernels::scratch(ComputeArray& array, int size, const std::string& name) {
    array.initialize(cc, size, mixedIsDouble ? sizeof(double) : sizeof(float), name);
}

void DeviceGeneratorKernels::uploadMixed(ComputeArray& array, const std::vector<double>& values,
                                         const std::string& name) {
    scratch(array, (int) values.size(), name);
    array.upload(values, true);  // converted to float in single precision
}

void DeviceGeneratorKernels::addDefines(std::map<std::string, std::string>& defines) const {
    defines["HAS_GENERATOR"] = "1";
    defines["NUM_PARAMS"] = cc.intToString(numParameters);
    defines["ROWS"] = cc.intToString(numRows);
    defines["HIDDEN"] = cc.intToString(hiddenSize);
    defines["REDUCE_BLOCK_SIZE"] = cc.intToString(ReduceBlockSize);
}

void DeviceGeneratorKernels::createKernels(ComputeProgram& program, ComputeArray& forces, ComputeArray& candidate) {
    ArrayInterface& correction = cc.getUseMixedPrecision() ? cc.getPosqCorrection() : cc.getPosq();
    placeKernel = program->createKernel("placeRows");
    for (ArrayInterface* array : {&cc.getPosq(), &correction, &cc.getVelm(), &cc.getAtomIndexArray(),
                                  (ArrayInterface*) &rows, (ArrayInterface*) &offset, (ArrayInterface*) &y,
                                  (ArrayInterface*) (isGnn ? &parameters : &zeros)})
        placeKernel->addArg(*array);
    placeKernel->addArg(isGnn ? parameterOffsets.back() : 0);  // b_out, the last parameter
    for (int i = 0; i < 5; i++)
        placeKernel->addArg();  // scale, periodic, box vectors
    setMixedArg(placeKernel, 9, scale, mixedIsDouble);
    rowGradientKernel = program->createKernel("rowGradient");
    for (ArrayInterface* array : {(ArrayInterface*) &dy, (ArrayInterface*) &forces, &cc.getPosq(), &correction,
                                  &cc.getVelm(), &cc.getAtomIndexArray(), (ArrayInterface*) &candidate,
                                  (ArrayInterface*) &rows})
        rowGradientKernel->addArg(*array);
    for (int i = 0; i < 6; i++)
        rowGradientKernel->addArg();  // scale, stiffness, periodic, box vectors
    setMixedArg(rowGradientKernel, 8, scale, mixedIsDouble);
    if (isGnn)
        buildGnn(program);
    else
        buildLinear(program);
}

void DeviceGeneratorKernels::setRunArgs(double stiffness, DeviceConstraintProjection& projection) {
    projection.setBoxArgs(placeKernel, 10);
    setMixedArg(rowGradientKernel, 9, stiffness, mixedIsDouble);
    projection.setBoxArgs(rowGradientKernel, 10);
}

void DeviceGeneratorKernels::reduceRows(ComputeProgram& program, std::vector<Launch>& into, ComputeArray& out, int o,
                                        ComputeArray& left, int l, int leftStride, ComputeArray& right, int q,
                                        int rightStride, int a, int b) {
    ComputeKernel kernel = program->createKernel("reduceRows");
    kernel->addArg(out);
    kernel->addArg(o);
    kernel->addArg(left);
    kernel->addArg(l);
    kernel->addArg(leftStride);
    kernel->addArg(right);
    kernel->addArg(q);
    kernel->addArg(rightStride);
    kernel->addArg(a);
    kernel->addArg(b);
    into.push_back({kernel, std::min(a * b, MaxReduceGroups) * ReduceBlockSize, ReduceBlockSize});
}

void DeviceGeneratorKernels::rowsTimes(ComputeProgram& program, std::vector<Launch>& into, ComputeArray& out, int o,
                                       ComputeArray& left, int l, int a, ComputeArray& right, int q, int b,
                                       bool transposed, bool accumulate) {
    ComputeKernel kernel = program->createKernel("rowsTimes");
    kernel->addArg(out);
    kernel->addArg(o);
    kernel->addArg(left);
    kernel->addArg(l);
    kernel->addArg(a);
    kernel->addArg(right);
    kernel->addArg(q);
    kernel->addArg(b);
    kernel->addArg((int) transposed);
    kernel->addArg((int) accumulate);
    into.push_back({kernel, numRows * b, -1});
}

void DeviceGeneratorKernels::buildLinear(ComputeProgram& program) {
    // X = X0 + V z; dz = V^T g
    rowsTimes(program, forward, y, 0, modes, 0, numModes, parameters, 0, 3, false, false);
    reduceRows(program, backward, gradient, 0, modes, 0, numModes, dy, 0, 3, numModes, 3);
}

ComputeArray& DeviceGeneratorKernels::layer(int l, int& at) {
    at = l == 0 ? 0 : (l - 1) * numRows * hiddenSize;
    return l == 0 ? parameters : hidden;
}

void DeviceGeneratorKernels::buildGnn(ComputeProgram& program) {
    const int n = numRows, h = hiddenSize, k = numModes, L = numLayers, block = n * h;
    const int wOut = parameterOffsets[parameterOffsets.size() - 2], bOut = parameterOffsets.back();
    auto weights = [&](int l, int which) { return parameterOffsets[1 + 3 * l + which]; };  // W_l, S_l, b_l
    int at, next;
    for (int l = 0; l < L; l++) {  // H_{l+1} = tanh(V (V^T H_l) W_l + H_l S_l + b_l)
        ComputeArray& current = layer(l, at);
        ComputeArray& following = layer(l + 1, next);
        reduceRows(program, forward, small, 0, modes, 0, k, current, at, h, k, h);
        rowsTimes(program, forward, propagated, l * block, modes, 0, k, small, 0, h, false, false);
        rowsTimes(program, forward, following, next, propagated, l * block, h, parameters, weights(l, 0), h, false,
                  false);
        rowsTimes(program, forward, following, next, current, at, h, parameters, weights(l, 1), h, false, true);
        ComputeKernel bias = program->createKernel("addBiasTanh");
        bias->addArg(following);
        bias->addArg(next);
        bias->addArg(parameters);
        bias->addArg(weights(l, 2));
        forward.push_back({bias, block, -1});
    }
    for (int l = 0; l <= L; l++) {  // Y = [H_0|...|H_L] W_out (b_out, scale and the offset in placeRows)
        ComputeArray& current = layer(l, at);
        rowsTimes(program, forward, y, 0, current, at, h, parameters, wOut + 3 * h * l, 3, false, l > 0);
    }
    // Backward from dy = scale * g: the readout, then each layer from the last.
    reduceRows(program, backward, gradient, bOut, ones, 0, 0, dy, 0, 3, 1, 3);
    for (int l = 0; l <= L; l++) {
        ComputeArray& current = layer(l, at);
        reduceRows(program, backward, gradient, wOut + 3 * h * l, current, at, h, dy, 0, 3, h, 3);
    }
    auto target = [&](int l, int& offsetOut) -> ComputeArray& {  // where dH_l goes (dH_0: the latent's gradient)
        offsetOut = l == 0 ? 0 : (l - 1) * block;
        return l == 0 ? gradient : hiddenGradient;
    };
    int dh;
    ComputeArray& last = target(L, dh);
    rowsTimes(program, backward, last, dh, dy, 0, 3, parameters, wOut + 3 * h * L, h, true, false);
    for (int l = L - 1; l >= 0; l--) {
        int dhNext;
        target(l + 1, dhNext);
        layer(l + 1, next);
        ComputeKernel back = program->createKernel("tanhBack");  // D = dH_{l+1} (1 - H_{l+1}^2)
        back->addArg(preGradient);
        back->addArg(hiddenGradient);
        back->addArg(dhNext);
        back->addArg(hidden);
        back->addArg(next);
        backward.push_back({back, block, -1});
        ComputeArray& current = layer(l, at);
        reduceRows(program, backward, gradient, weights(l, 0), propagated, l * block, h, preGradient, 0, h, h, h);
        reduceRows(program, backward, gradient, weights(l, 1), current, at, h, preGradient, 0, h, h, h);
        reduceRows(program, backward, gradient, weights(l, 2), ones, 0, 0, preGradient, 0, h, 1, h);
        ComputeArray& into = target(l, dh);  // dH_l = dY W_out,l^T + D S_l^T + V V^T (D W_l^T)
        rowsTimes(program, backward, into, dh, dy, 0, 3, parameters, wOut + 3 * h * l, h, true, false);
        rowsTimes(program, backward, into, dh, preGradient, 0, h, parameters, weights(l, 1), h, true, true);
        rowsTimes(program, backward, product, 0, preGradient, 0, h, parameters, weights(l, 0), h, true, false);
        reduceRows(program, backward, small, 0, modes, 0, k, product, 0, h, k, h);
        rowsTimes(program, backward, into, dh, modes, 0, k, small, 0, h, false, true);
    }
}

void DeviceGeneratorKernels::computePositions() {
    for (Launch& launch : forward)
        launch.kernel->execute(launch.threads, launch.blockSize);
    placeKernel->execute(cc.getNumAtoms());
}

void DeviceGeneratorKernels::computeGradient() {
    rowGradientKernel->execute(cc.getNumAtoms());
    for (Launch& launch : backward)
        launch.kernel->execute(launch.threads, launch.blockSize);
}

void DeviceGeneratorKernels::copyParametersTo(ReparamGenerator& generator) {
    std::vector<double> flat;
    parameters.download(flat, true);
    for (size_t p = 0; p < parameterOffsets.size(); p++) {
        auto first = flat.begin() + parameterOffsets[p];
        generator.setParameterValues((int) p, std::vector<double>(first, first + parameterSizes[p]));
    }
}
