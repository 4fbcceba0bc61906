/* Prints the device stages' kernel sources (platforms/common) as OpenMM would compile them, for
 * compile_kernel_sources.sh: argument "adam", "generator" (the Adam source and the generator kernels, which the
 * script compiles with HAS_GENERATOR), "fire" or "precon". */
#include "DeviceAdamKernelSource.h"
#include "DeviceFireKernelSource.h"
#include "DeviceGeneratorKernelSource.h"
#include "DevicePreconKernelSource.h"
#include "DeviceProjectionKernelSource.h"
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    std::string which = argc > 1 ? argv[1] : "adam";
    const char* stage = which == "adam" || which == "generator" ? deviceAdamKernelSource
                        : which == "fire" ? deviceFireKernelSource : devicePreconKernelSource;
    std::printf("%s\n%s\n%s\n", deviceProjectionKernelSource, stage,
                which == "generator" ? deviceGeneratorKernelSource : "");
    return 0;
}
