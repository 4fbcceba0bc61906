#ifndef OPENMM_REPARAM_ADAM_OPTIMIZER_H_
#define OPENMM_REPARAM_ADAM_OPTIMIZER_H_

/**
 * Adam and gradient-norm clipping with exactly the arithmetic of torch.optim.Adam (single-tensor path, no
 * weight decay, amsgrad off) and torch.nn.utils.clip_grad_norm_, so the C++ and Python engines take the same
 * steps to round-off.
 */

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <vector>

namespace ReparamPlugin {

class AdamOptimizer {
public:
    AdamOptimizer(const std::vector<at::Tensor>& params, double lr, double beta1 = 0.9, double beta2 = 0.999,
                  double eps = 1e-8);
    /** One Adam update of every parameter from its .grad() (parameters without a gradient are skipped). */
    void step();
    /** Set every parameter's gradient to undefined (as zero_grad(set_to_none=True)). */
    void zeroGrad();
    long long getStepCount() const { return stepCount; }
private:
    std::vector<at::Tensor> params, expAvg, expAvgSq;
    double lr, beta1, beta2, eps;
    long long stepCount;
};

/**
 * Backpropagate grad from output into the leaves' .grad (as output.backward(grad)), running libtorch's base
 * autograd engine directly. (When torch's Python module is loaded the default engine is the Python one, which
 * refuses to run while the calling thread holds the GIL, as it does inside a SWIG call from Python; the base
 * engine needs no Python at all for these graphs.)
 */
void backward(const at::Tensor& output, const at::Tensor& grad);

/** Scale all gradients so their total 2-norm is at most maxNorm (torch.nn.utils.clip_grad_norm_). Returns the norm. */
double clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm);

} // namespace ReparamPlugin

#endif
