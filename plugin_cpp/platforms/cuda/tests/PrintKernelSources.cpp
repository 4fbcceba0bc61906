/* Prints the device stages' kernel sources (platforms/common) as OpenMM would compile them, for
 * compile_kernel_sources.sh: argument "adam" or "fire". */
#include "DeviceAdamKernelSource.h"
#include "DeviceFireKernelSource.h"
#include "DeviceProjectionKernelSource.h"
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    std::string which = argc > 1 ? argv[1] : "adam";
    std::printf("%s\n%s\n", deviceProjectionKernelSource, which == "adam" ? deviceAdamKernelSource : deviceFireKernelSource);
    return 0;
}
