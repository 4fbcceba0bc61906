/* CpuForceFallback: an overflowed evaluation again on the CPU platform (see CpuForceFallback.h). */
#include "CpuForceFallback.h"
#include "MovableParticles.h"
#include "openmm/OpenMMException.h"
#include "openmm/Platform.h"
#include "openmm/State.h"
#include <algorithm>
#include <cmath>
#include <map>
#include <string>

using namespace ReparamPlugin;
using namespace OpenMM;

const double CpuForceFallback::SingleForceLimit = 1099511627776.0;  // 2^40

CpuForceFallback::CpuForceFallback(ComputeContext& cc) : cc(cc), integrator(0.001), evaluations(0) {
}

double CpuForceFallback::evaluate(ContextImpl& context, int groups, ComputeArray& forces, double& maxForce) {
    const System& system = context.getSystem();
    if (!cpuContext) {
        Platform* platform;
        try {
            platform = &Platform::getPlatformByName("CPU");
        }
        catch (OpenMMException&) {
            platform = &Platform::getPlatformByName("Reference");
        }
        cpuContext.reset(new Context(system, integrator, *platform));
    }
    for (const auto& parameter : context.getParameters())
        cpuContext->setParameter(parameter.first, parameter.second);
    Vec3 a, b, c;
    context.getPeriodicBoxVectors(a, b, c);
    cpuContext->setPeriodicBoxVectors(a, b, c);
    std::vector<Vec3> positions;
    context.getPositions(positions);
    cpuContext->setPositions(positions);
    cpuContext->computeVirtualSites();
    State state = cpuContext->getState(State::Energy | State::Forces, false, groups);
    const std::vector<Vec3>& atomForces = state.getForces();
    const std::vector<int>& order = cc.getAtomIndex();
    std::vector<double> rows(3 * cc.getNumAtoms(), 0.0);
    maxForce = 0.0;
    for (int i = 0; i < cc.getNumAtoms(); i++) {
        int atom = order[i];
        for (int k = 0; k < 3; k++)
            rows[3 * i + k] = atomForces[atom][k];
        if (isMovable(system, atom))
            maxForce = std::max(maxForce, std::sqrt(atomForces[atom].dot(atomForces[atom])));
    }
    bool singlePrecision = !(cc.getUseMixedPrecision() || cc.getUseDoublePrecision());
    if (singlePrecision && maxForce > SingleForceLimit)
        for (double& value : rows)
            value *= SingleForceLimit / maxForce;
    forces.upload(rows, true);
    evaluations++;
    return state.getPotentialEnergy();
}
