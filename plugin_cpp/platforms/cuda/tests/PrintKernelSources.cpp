/* Prints the device stages' kernel sources (platforms/common/src/kernels, as ReparamKernelSources carries them)
 * as OpenMM would compile them, for compile_kernel_sources.sh: argument "adam", "generator" (the Adam source and
 * the generator kernels, which the script compiles with HAS_GENERATOR), "fire" or "precon". */
#include "ReparamKernelSources.h"
#include <cstdio>
#include <string>

using namespace ReparamPlugin;

int main(int argc, char** argv) {
    std::string which = argc > 1 ? argv[1] : "adam";
    const std::string& stage = which == "adam" || which == "generator" ? ReparamKernelSources::adam
                               : which == "fire" ? ReparamKernelSources::fire : ReparamKernelSources::precon;
    std::printf("%s\n%s\n%s\n", ReparamKernelSources::projection.c_str(), stage.c_str(),
                which == "generator" ? ReparamKernelSources::generator.c_str() : "");
    return 0;
}
