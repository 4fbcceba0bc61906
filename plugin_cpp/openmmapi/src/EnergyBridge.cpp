/* EnergyBridge: force-field loss and gradient of candidate positions (see EnergyBridge.h). */
#include "EnergyBridge.h"
#include "MovableParticles.h"
#include "ContextAccess.h"
#include "NonFiniteEnergyException.h"
#include "openmm/OpenMMException.h"
#include "openmm/System.h"
#include <cmath>
#include <map>
#include <sstream>
#include <tuple>

using namespace ReparamPlugin;
using namespace OpenMM;

EnergyBridge::EnergyBridge(Context& context, double constraintTol, int groups, double constraintStiffness) :
        context(context), constraintTol(constraintTol), stiffness(constraintStiffness), lastMaxForce(0.0), lastRmsForce(0.0),
        projector(context.getSystem()), groups(groups) {
    const System& system = context.getSystem();
    numParticles = system.getNumParticles();
    hasConstraints = system.getNumConstraints() > 0;
    hasVirtualSites = false;
    anyFixed = false;
    fixed.resize(numParticles);
    for (int i = 0; i < numParticles; i++) {
        hasVirtualSites |= system.isVirtualSite(i);
        fixed[i] = !isMovable(system, i);
        anyFixed |= fixed[i];
    }
    candidate.resize(numParticles);
    evaluated.resize(numParticles);
    forces.resize(numParticles);
    ContextAccess::impl(context).getPositions(start);
}

double EnergyBridge::evaluate(const at::Tensor& X, at::Tensor& grad, double& energy) {
    if (X.size(0) != numParticles)
        throw OpenMMException("EnergyBridge: generator output has the wrong number of atoms");
    at::Tensor x = X.contiguous();
    const double* xd = x.data_ptr<double>();
    for (int i = 0; i < numParticles; i++)
        candidate[i] = fixed[i] ? start[i] : Vec3(xd[3 * i], xd[3 * i + 1], xd[3 * i + 2]);
    ContextImpl& impl = ContextAccess::impl(context);
    context.setPositions(candidate);
    if (hasConstraints)
        context.applyConstraints(constraintTol);
    if (hasVirtualSites)
        context.computeVirtualSites();
    energy = impl.calcForcesAndEnergy(true, true, groups);
    impl.getForces(forces);
    if (hasConstraints || hasVirtualSites)
        impl.getPositions(evaluated);
    else
        evaluated = candidate;
    if (!grad.defined() || grad.size(0) != numParticles)
        grad = at::empty({numParticles, 3}, at::TensorOptions().dtype(at::kDouble));
    double* g = grad.data_ptr<double>();
    bool finite = std::isfinite(energy);
    for (int i = 0; i < numParticles; i++)
        finite &= std::isfinite(forces[i][0]) && std::isfinite(forces[i][1]) && std::isfinite(forces[i][2]);
    if (!finite) {
        std::stringstream msg;
        msg << "the force field returned a non-finite energy (" << energy << ") or forces";
        throw NonFiniteEnergyException(msg.str());
    }
    projected = forces;
    if (hasConstraints)
        projector.project(projected, evaluated);
    double loss = energy, penalty = 0.0, squared = 0.0;
    int movable = 0;
    lastMaxForce = 0.0;
    for (int i = 0; i < numParticles; i++) {
        if (fixed[i]) {
            g[3 * i] = g[3 * i + 1] = g[3 * i + 2] = 0.0;
            continue;
        }
        lastMaxForce = std::max(lastMaxForce, std::sqrt(forces[i].dot(forces[i])));
        squared += projected[i].dot(projected[i]);
        movable++;
        for (int j = 0; j < 3; j++) {
            double gj = -projected[i][j];
            if (hasConstraints) {
                double offset = candidate[i][j] - evaluated[i][j];
                gj += stiffness * offset;
                penalty += offset * offset;
            }
            g[3 * i + j] = gj;
        }
    }
    lastRmsForce = movable > 0 ? std::sqrt(squared / movable) : 0.0;
    if (hasConstraints)
        loss = energy + 0.5 * stiffness * penalty;
    return loss;
}

at::Tensor EnergyBridge::currentPositions() {
    std::vector<Vec3> pos;
    ContextAccess::impl(context).getPositions(pos);
    at::Tensor t = at::empty({numParticles, 3}, at::TensorOptions().dtype(at::kDouble));
    double* d = t.data_ptr<double>();
    for (int i = 0; i < numParticles; i++)
        for (int j = 0; j < 3; j++)
            d[3 * i + j] = pos[i][j];
    return t;
}

void EnergyBridge::setContextPositions(const std::vector<Vec3>& positions) {
    std::vector<Vec3> pos = positions;
    if (anyFixed)
        for (int i = 0; i < numParticles; i++)
            if (fixed[i])
                pos[i] = start[i];
    context.setPositions(pos);
    if (hasVirtualSites)
        context.computeVirtualSites();
}

bool EnergyBridge::hasCollapsedContact(const std::vector<Vec3>& positions, double distance) const {
    // Only called on suspect steps (rare), so a cell grid keeps it O(N) without a persistent neighbor list.
    if (!(distance > 0))
        return false;
    std::map<std::tuple<long, long, long>, std::vector<int> > cells;
    auto cellOf = [&](const Vec3& p) {
        return std::make_tuple((long) std::floor(p[0] / distance), (long) std::floor(p[1] / distance),
                               (long) std::floor(p[2] / distance));
    };
    for (int i = 0; i < numParticles; i++)
        if (!fixed[i])
            cells[cellOf(positions[i])].push_back(i);
    double cutoff2 = distance * distance;
    for (int i = 0; i < numParticles; i++) {
        if (fixed[i])
            continue;
        auto c = cellOf(positions[i]);
        for (long dx = -1; dx <= 1; dx++)
            for (long dy = -1; dy <= 1; dy++)
                for (long dz = -1; dz <= 1; dz++) {
                    auto found = cells.find(std::make_tuple(std::get<0>(c) + dx, std::get<1>(c) + dy, std::get<2>(c) + dz));
                    if (found == cells.end())
                        continue;
                    for (int j : found->second) {
                        if (j <= i)
                            continue;
                        Vec3 d = positions[i] - positions[j];
                        if (d.dot(d) <= cutoff2)
                            return true;
                    }
                }
    }
    return false;
}
