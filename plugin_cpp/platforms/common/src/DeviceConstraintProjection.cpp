/* DeviceConstraintProjection: forces and the orthogonal constraint projection on the device (see the header). */
#include "DeviceConstraintProjection.h"
#include "ConstraintProjector.h"
#include "DeviceAdamStage.h"
#include "ReparamKernelSources.h"
#include "openmm/OpenMMException.h"
#include "openmm/Vec3.h"
#include "openmm/common/ComputeVectorTypes.h"
#include <algorithm>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

const char* DeviceConstraintProjection::kernelSource() {
    return ReparamKernelSources::projection.c_str();
}

void DeviceConstraintProjection::initialize(ComputeContext& context, const System& system,
                                            std::map<std::string, std::string>& defines) {
    cc = &context;
    mixedIsDouble = cc->getUseMixedPrecision() || cc->getUseDoublePrecision();
    int element = mixedIsDouble ? sizeof(double) : sizeof(float);
    forces.initialize(*cc, 3 * cc->getNumAtoms(), element, "reparamForces");
    overflow.initialize<int>(*cc, 1, "reparamForceOverflow");
    ConstraintProjector projector(system);
    std::vector<int> starts(1, 0), largeStarts(1, 0);
    std::vector<mm_int2> atoms, largeAtoms;
    for (const std::vector<int>& group : projector.getGroups()) {
        bool large = (int) group.size() > DeviceMaxConstraintGroup;
        std::vector<mm_int2>& target = large ? largeAtoms : atoms;
        for (int k : group)
            target.push_back(mm_int2(projector.getFirst(k), projector.getSecond(k)));
        (large ? largeStarts : starts).push_back((int) target.size());
    }
    numGroups = (int) starts.size() - 1;
    numLargeGroups = (int) largeStarts.size() - 1;
    upload(groupStart, pairs, starts, atoms, "reparamGroup");
    upload(largeGroupStart, largePairs, largeStarts, largeAtoms, "reparamLargeGroup");
    scratch.initialize(*cc, std::max<size_t>(1, 7 * largeAtoms.size()), element, "reparamLargeGroupScratch");
    atomWork.initialize(*cc, 3 * cc->getNumAtoms(), element, "reparamLargeGroupWork");
    defines["NUM_ATOMS"] = cc->intToString(cc->getNumAtoms());
    defines["PADDED_NUM_ATOMS"] = cc->intToString(cc->getPaddedNumAtoms());
    defines["NUM_LARGE_GROUPS"] = cc->intToString(numLargeGroups);
    defines["CG_TARGET"] = mixedIsDouble ? "1e-28" : "1e-12";
    defines["NUM_CONSTRAINT_GROUPS"] = cc->intToString(numGroups);
    defines["MAX_GROUP"] = cc->intToString(DeviceMaxConstraintGroup);
}

void DeviceConstraintProjection::upload(ComputeArray& starts, ComputeArray& pairs, const std::vector<int>& startValues,
                                        const std::vector<mm_int2>& pairValues, const std::string& name) {
    starts.initialize<int>(*cc, startValues.size(), name + "Start");
    starts.upload(startValues);
    pairs.initialize<mm_int2>(*cc, std::max<size_t>(1, pairValues.size()), name + "Pairs");
    if (!pairValues.empty())
        pairs.upload(pairValues);
}

void DeviceConstraintProjection::createKernels(ComputeProgram& program) {
    ArrayInterface& correction = cc->getUseMixedPrecision() ? cc->getPosqCorrection() : cc->getPosq();
    loadKernel = program->createKernel("loadForces");
    loadKernel->addArg(forces);
    loadKernel->addArg(cc->getLongForceBuffer());
    loadKernel->addArg(cc->getVelm());
    loadKernel->addArg(overflow);
    projectKernel = program->createKernel("projectGroups");
    projectKernel->addArg(cc->getPosq());
    projectKernel->addArg(correction);
    projectKernel->addArg();  // values
    projectKernel->addArg(cc->getAtomIndexArray());
    projectKernel->addArg();  // byOrder
    projectKernel->addArg(groupStart);
    projectKernel->addArg(pairs);
    largeKernel = program->createKernel("projectLargeGroups");
    largeKernel->addArg(cc->getPosq());
    largeKernel->addArg(correction);
    largeKernel->addArg();  // values
    largeKernel->addArg(cc->getAtomIndexArray());
    largeKernel->addArg();  // byOrder
    largeKernel->addArg(largeGroupStart);
    largeKernel->addArg(largePairs);
    largeKernel->addArg(scratch);
    largeKernel->addArg(atomWork);
}

bool DeviceConstraintProjection::loadForces() {
    cc->clearBuffer(overflow);
    loadKernel->execute(cc->getNumAtoms());
    int overflowed;
    overflow.download(&overflowed);
    return overflowed != 0;
}

void DeviceConstraintProjection::project(ComputeArray& values, bool byOrder) {
    if (numGroups > 0) {
        projectKernel->setArg(2, values);
        projectKernel->setArg(4, (int) byOrder);
        projectKernel->execute(numGroups);
    }
    if (numLargeGroups > 0) {
        largeKernel->setArg(2, values);
        largeKernel->setArg(4, (int) byOrder);
        largeKernel->execute(numLargeGroups);
    }
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
