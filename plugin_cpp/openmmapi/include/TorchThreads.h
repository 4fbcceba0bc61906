#ifndef OPENMM_REPARAM_TORCH_THREADS_H_
#define OPENMM_REPARAM_TORCH_THREADS_H_

/**
 * Scoped limit on libtorch's intra-op threads. The generator's tensors are small (N x hidden), so extra torch
 * threads gain nothing, while their OpenMP spin-waiting competes with the OpenMM platform's own threads for the
 * same cores: measured on 2 cores (2JOF, CPU platform), one step cost 52 ms with 2 torch threads and 13 ms with 1.
 */

#include <ATen/Parallel.h>

namespace ReparamPlugin {

class TorchThreadsGuard {
public:
    /** Use `threads` intra-op threads until destruction (threads <= 0: leave the setting alone). */
    explicit TorchThreadsGuard(int threads) : previous(-1) {
        if (threads > 0 && at::get_num_threads() != threads) {
            previous = at::get_num_threads();
            at::set_num_threads(threads);
        }
    }
    ~TorchThreadsGuard() {
        if (previous > 0)
            at::set_num_threads(previous);
    }
private:
    int previous;
};

} // namespace ReparamPlugin

#endif
