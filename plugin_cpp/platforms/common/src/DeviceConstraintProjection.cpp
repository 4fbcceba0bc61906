/* DeviceConstraintProjection: forces and the orthogonal constraint projection on the device (see the header). */
#include "DeviceConstraintProjection.h"
#include "ConstraintProjector.h"
#include "DeviceAdamStage.h"
#include "DeviceProjectionKernelSource.h"
#include "openmm/OpenMMException.h"
#include "openmm/Vec3.h"
#include "openmm/common/ComputeVectorTypes.h"
#include <algorithm>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

const char* DeviceConstraintProjection::kernelSource() {
    return deviceProjectionKernelSource;
}

void DeviceConstraintProjection::initialize(ComputeContext& context, const System& system,
                                            std::map<std::string, std::string>& defines) {
    cc = &context;
    mixedIsDouble = cc->getUseMixedPrecision() || cc->getUseDoublePrecision();
    int element = mixedIsDouble ? sizeof(double) : sizeof(float);
    forces.initialize(*cc, 3 * cc->getNumAtoms(), element, "reparamForces");
    ConstraintProjector projector(system);
    if (projector.largestGroup() > DeviceMaxConstraintGroup)
        throw OpenMMException("the device stages project constraint groups of at most " +
                              std::to_string(DeviceMaxConstraintGroup) + " constraints");
    std::vector<int> starts(1, 0);
    std::vector<mm_int2> atoms;
    for (const std::vector<int>& group : projector.getGroups()) {
        for (int k : group)
            atoms.push_back(mm_int2(projector.getFirst(k), projector.getSecond(k)));
        starts.push_back((int) atoms.size());
    }
    numGroups = (int) starts.size() - 1;
    groupStart.initialize<int>(*cc, starts.size(), "reparamGroupStart");
    groupStart.upload(starts);
    pairs.initialize<mm_int2>(*cc, std::max<size_t>(1, atoms.size()), "reparamConstraintPairs");
    if (!atoms.empty())
        pairs.upload(atoms);
    defines["NUM_ATOMS"] = cc->intToString(cc->getNumAtoms());
    defines["PADDED_NUM_ATOMS"] = cc->intToString(cc->getPaddedNumAtoms());
    defines["NUM_CONSTRAINT_GROUPS"] = cc->intToString(numGroups);
    defines["MAX_GROUP"] = cc->intToString(DeviceMaxConstraintGroup);
}

void DeviceConstraintProjection::createKernels(ComputeProgram& program) {
    ArrayInterface& correction = cc->getUseMixedPrecision() ? cc->getPosqCorrection() : cc->getPosq();
    loadKernel = program->createKernel("loadForces");
    loadKernel->addArg(forces);
    loadKernel->addArg(cc->getLongForceBuffer());
    projectKernel = program->createKernel("projectGroups");
    projectKernel->addArg(cc->getPosq());
    projectKernel->addArg(correction);
    projectKernel->addArg();  // values
    projectKernel->addArg(cc->getAtomIndexArray());
    projectKernel->addArg();  // byOrder
    projectKernel->addArg(groupStart);
    projectKernel->addArg(pairs);
}

void DeviceConstraintProjection::loadForces() {
    loadKernel->execute(cc->getNumAtoms());
}

void DeviceConstraintProjection::project(ComputeArray& values, bool byOrder) {
    if (numGroups == 0)
        return;
    projectKernel->setArg(2, values);
    projectKernel->setArg(4, (int) byOrder);
    projectKernel->execute(numGroups);
}

void DeviceConstraintProjection::setBoxArgs(ComputeKernel& kernel, int index) {
    Vec3 a, b, c;
    cc->getPeriodicBoxVectors(a, b, c);
    bool periodic = cc->getContextImpl()->getSystem().usesPeriodicBoundaryConditions();
    kernel->setArg(index, (int) periodic);
    Vec3 box[3] = {a, b, c};
    for (int k = 0; k < 3; k++) {
        if (mixedIsDouble)
            kernel->setArg(index + 1 + k, mm_double4(box[k][0], box[k][1], box[k][2], 0.0));
        else
            kernel->setArg(index + 1 + k, mm_float4((float) box[k][0], (float) box[k][1], (float) box[k][2], 0.0f));
    }
}
