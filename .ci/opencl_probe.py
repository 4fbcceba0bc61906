"""Whether OpenMM's OpenCL platform can create a Context here; prints the runtime, or why not (exit status 1)."""
import sys

import openmm

try:
    platform = openmm.Platform.getPlatformByName("OpenCL")
except openmm.OpenMMException as error:
    sys.exit(f"OpenMM has no OpenCL platform (no libOpenCL.so.1, or no OpenCL runtime in /etc/OpenCL/vendors): {error}")
system = openmm.System()
system.addParticle(1.0)
try:
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform)
except openmm.OpenMMException as error:
    sys.exit(f"OpenMM's OpenCL platform cannot create a Context (no usable OpenCL runtime): {error}")
print("OpenCL runtime:", platform.getPropertyValue(context, "OpenCLPlatformName"), "/",
      platform.getPropertyValue(context, "DeviceName"))
