/* Prints the device stages' kernel sources (platforms/common) as OpenMM would compile them, for
 * compile_kernel_sources.sh: argument "adam", "linear" (the Adam source, which the script compiles with HAS_MODES),
 * "fire" or "precon". */
#include "DeviceAdamKernelSource.h"
#include "DeviceFireKernelSource.h"
#include "DevicePreconKernelSource.h"
#include "DeviceProjectionKernelSource.h"
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    std::string which = argc > 1 ? argv[1] : "adam";
    const char* stage = which == "adam" || which == "linear" ? deviceAdamKernelSource
                        : which == "fire" ? deviceFireKernelSource : devicePreconKernelSource;
    std::printf("%s\n%s\n", deviceProjectionKernelSource, stage);
    return 0;
}
