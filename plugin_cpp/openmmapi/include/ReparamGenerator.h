#ifndef OPENMM_REPARAM_GENERATOR_H_
#define OPENMM_REPARAM_GENERATOR_H_

/**
 * ReparamGenerator: the C++ (libtorch) twin of openmm_reparam/generators.py.
 *
 * It holds the fixed buffers and the learnable parameters of a generator X = G_theta(Z) and evaluates it with
 * libtorch tensors (float64) so that autograd can backpropagate -F through it. The weights come from the Python
 * generators (generators.export_state), in their fixed parameter order, so both engines compute one function:
 *
 *   kind "gnn":    H_{l+1} = tanh(V (V^T H_l) W_l + H_l S_l + b_l),  Y = [H_0|...|H_L] W_out + b_out,
 *                  X = center + scale * Y + residual
 *                  parameters: latent, weights.0, self_weights.0, biases.0, ..., w_out, b_out
 *                  buffers:    modes (N,k), center (3), scale (setScale), residual (N,3)
 *   kind "linear" (alias "cg"):  X = x0 + V z;  parameter: z (k,3);  buffers: modes (N,k), x0 (N,3)
 *   kind "torchscript":  X = the forward() of a TorchScript module (setModule: the bytes torch.jit.save
 *                  writes), which takes no input and returns (N,3) positions in nm; parameters: the module's
 *                  parameters that require grad, in named_parameters() order and with its names; no buffers.
 *
 * Optionally (setSolvent, the twin of reparam/solute.py's SoluteGenerator) the generator covers only the
 * solute atoms and the solvent atoms' coordinates are one more parameter, "solvent_coordinates", the last one:
 * X[solute] = G(theta), X[solvent] = the solvent coordinates.
 */

#include "openmm/Vec3.h"
#include <memory>
#include <string>
#include <vector>
#ifndef SWIG
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#endif

namespace ReparamPlugin {

class ReparamGenerator {
public:
    /**
     * Create an empty generator of the given kind ("gnn", "linear", "cg" or "torchscript"); fill it with
     * setBuffer/addParameter, or for "torchscript" with setModule.
     */
    explicit ReparamGenerator(const std::string& kind);
    ReparamGenerator(const ReparamGenerator& other);
    ReparamGenerator& operator=(const ReparamGenerator& other);
    /** "gnn", "linear" or "torchscript". */
    const std::string& getKind() const;
    /**
     * Set a fixed buffer ("modes", "center", "residual", "x0") from row-major float64 values.
     * cols = 0 means a 1-D array of length rows.
     */
    void setBuffer(const std::string& name, const std::vector<double>& values, int rows, int cols);
    /** Set the output scale of a "gnn" generator. */
    void setScale(double scale);
    /** Append the next learnable parameter (row-major float64; cols = 0 for 1-D), in the Python order. */
    void addParameter(const std::string& name, const std::vector<double>& values, int rows, int cols);
    /**
     * Load the module of a "torchscript" generator from the bytes torch.jit.save wrote (a file's contents) and
     * take its parameters that require grad as this generator's, in named_parameters() order. Its forward() is
     * evaluated once to check that it returns an (N,3) tensor. Call it once, before setSolvent.
     */
    void setModule(const std::string& moduleBytes);
    /** A "torchscript" generator's module with its current parameter values, as bytes setModule loads. */
    std::string getModuleBytes() const;
    int getNumParameters() const;
    const std::string& getParameterName(int index) const;
    /** Number of elements in parameter index. */
    int getParameterSize(int index) const;
    /** One element (row-major) of parameter index. */
    double getParameterValue(int index, int element) const;
    /** Overwrite all values of parameter index (row-major). */
    void setParameterValues(int index, const std::vector<double>& values);
    /** Number of atoms N (rows of the modes, plus the solvent atoms). */
    int getNumAtoms() const;
    /**
     * Cover only the solute atoms (the rows of the modes, in this order) and make the solvent atoms' coordinates
     * (row-major (n_solvent, 3), nm) the last parameter. The indices must partition 0..N-1. Call it last.
     */
    void setSolvent(const std::vector<int>& solute, const std::vector<int>& solvent,
                    const std::vector<double>& coordinates);
    bool hasSolvent() const { return numSolvent > 0; }
    /** Number of slow modes k (columns of the modes; 0 for "torchscript"). */
    int getNumModes() const;
    /** Number of graph-convolution layers of a "gnn" generator (0 for "linear"). */
    int getNumLayers() const { return layers; }
    /** Number of parameters of the generator itself (without the solvent coordinates). */
    int getNumInnerParameters() const { return numInnerParameters(); }
    /** Throw an OpenMMException if the buffers and parameters do not form a valid generator. */
    void validate() const;
    /** Evaluate X = G(theta) without autograd; returns N*3 row-major positions in nm. */
    std::vector<double> computePositions() const;
#ifndef SWIG
    /** Evaluate X = G(theta) as an (N,3) tensor, recording autograd history if grad mode is on. */
    at::Tensor forward() const;
    /** The learnable parameters (leaf tensors with requires_grad), in the fixed order. */
    std::vector<at::Tensor>& parameters();
    const std::vector<at::Tensor>& parameters() const;
    /** Row-major values and shape (cols = 0: 1-D) of a buffer set with setBuffer; rows = -1 if it is unset. */
    void getBuffer(const std::string& name, std::vector<double>& values, int& rows, int& cols) const;
    /** Row-major values and shape (cols = 0: 1-D) of parameter index. */
    void getParameter(int index, std::vector<double>& values, int& rows, int& cols) const;
    double getScale() const { return scale; }
    /** The solute and solvent indices given to setSolvent (both empty without solvent). */
    void getSolvent(std::vector<int>& solute, std::vector<int>& solvent) const;
    /** Set the solvent coordinates to their rows of positions (projected gradient descent on constraints). */
    void putSolventAt(const std::vector<OpenMM::Vec3>& positions);
#endif
private:
    std::string kind;
    int layers;
    double scale;
    std::vector<std::string> parameterNames;
    int numSolvent;
    int moduleAtoms;
    struct Script;
    std::shared_ptr<Script> script;  // the loaded module of a "torchscript" generator (defined in the .cpp)
#ifndef SWIG
    int numInnerParameters() const;
    int numInnerAtoms() const;
    at::Tensor innerForward() const;
    at::Tensor modes, center, residual, x0, soluteIndex, solventIndex;
    std::vector<at::Tensor> params;
#endif
};

} // namespace ReparamPlugin

#endif
