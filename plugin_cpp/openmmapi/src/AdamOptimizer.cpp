/* Adam and gradient clipping with torch.optim.Adam / clip_grad_norm_ arithmetic (see AdamOptimizer.h). */
#include "AdamOptimizer.h"
#include <cmath>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/autograd/variable.h>

using namespace ReparamPlugin;

AdamOptimizer::AdamOptimizer(const std::vector<at::Tensor>& params, double lr, double beta1, double beta2, double eps) :
        params(params), lr(lr), beta1(beta1), beta2(beta2), eps(eps), stepCount(0) {
    for (const at::Tensor& p : params) {
        expAvg.push_back(at::zeros_like(p, at::MemoryFormat::Preserve).detach());
        expAvgSq.push_back(at::zeros_like(p, at::MemoryFormat::Preserve).detach());
    }
}

void AdamOptimizer::zeroGrad() {
    for (at::Tensor& p : params)
        p.mutable_grad().reset();
}

void AdamOptimizer::step() {
    at::NoGradGuard noGrad;
    stepCount++;
    // torch.optim.adam._single_tensor_adam with weight_decay=0, amsgrad=False, maximize=False.
    double step = (double) stepCount;
    double biasCorrection1 = 1.0 - std::pow(beta1, step);
    double biasCorrection2 = 1.0 - std::pow(beta2, step);
    double stepSize = lr / biasCorrection1;
    double biasCorrection2Sqrt = std::sqrt(biasCorrection2);
    for (size_t i = 0; i < params.size(); i++) {
        const at::Tensor& grad = params[i].grad();
        if (!grad.defined())
            continue;
        expAvg[i].lerp_(grad, 1.0 - beta1);
        expAvgSq[i].mul_(beta2).addcmul_(grad, grad, 1.0 - beta2);
        at::Tensor denom = (expAvgSq[i].sqrt() / biasCorrection2Sqrt).add_(eps);
        params[i].addcdiv_(expAvg[i], denom, -stepSize);
    }
}

double ReparamPlugin::clipGradNorm(const std::vector<at::Tensor>& params, double maxNorm) {
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> norms;
    for (const at::Tensor& p : params)
        if (p.grad().defined())
            norms.push_back(at::linalg_vector_norm(p.grad(), 2));
    if (norms.empty())
        return 0.0;
    at::Tensor total = at::linalg_vector_norm(at::stack(norms), 2);
    // Python evaluates max_norm / (total + 1e-6) as reciprocal(total + 1e-6) * max_norm (Tensor.__rtruediv__).
    at::Tensor coef = at::clamp((total + 1e-6).reciprocal() * maxNorm, c10::nullopt, 1.0);
    for (const at::Tensor& p : params)
        if (p.grad().defined())
            p.grad().mul_(coef);
    return total.item<double>();
}

void ReparamPlugin::backward(const at::Tensor& output, const at::Tensor& grad) {
    torch::autograd::edge_list roots{torch::autograd::impl::gradient_edge(output)};
    torch::autograd::variable_list grads{grad};
    torch::autograd::Engine::get_base_engine().execute(roots, grads, /*keep_graph=*/false, /*create_graph=*/false,
                                                       /*accumulate_grad=*/true, /*outputs=*/{});
}
