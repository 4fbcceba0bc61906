/* The stage settings the C++ stage tests start from (the Python options give these fields in a real run; the
 * tests pick their own values), and the Context's energy they all check. */
#ifndef REPARAM_TEST_STAGE_SETTINGS_H_
#define REPARAM_TEST_STAGE_SETTINGS_H_

#include "AdamStage.h"
#include "FireStage.h"
#include "PreconStage.h"
#include "OpenMM.h"

inline double contextEnergy(OpenMM::Context& context) {
    return context.getState(OpenMM::State::Energy).getPotentialEnergy();
}

/** Adam's step fields (learning rate lr, collapse guard at collapseDistance nm; 0 turns it off). */
inline ReparamPlugin::AdamStageSettings adamStepSettings(double lr, double collapseDistance) {
    ReparamPlugin::AdamStageSettings s;
    s.lr = lr;
    s.clipNorm = 1e3;
    s.relTol = 1e-5;
    s.collapseDistance = collapseDistance;
    s.spikeFactor = 3.0;
    s.constraintStiffness = 1e4;
    s.torchThreads = 1;
    return s;
}

/** A whole Adam stage: at most maxSteps steps, stopping after patience steps without a new lowest energy. */
inline ReparamPlugin::AdamStageSettings adamStageSettings(double lr, double collapseDistance, int maxSteps,
                                                          int patience) {
    ReparamPlugin::AdamStageSettings s = adamStepSettings(lr, collapseDistance);
    s.name = "reparam";
    s.maxSteps = maxSteps;
    s.patience = patience;
    s.progressWindow = 0;
    s.progressFraction = 0.0;
    s.forceTolerance = 0.0;
    s.timeLimit = -1.0;
    return s;
}

inline ReparamPlugin::FireStageSettings fireStageSettings(int maxSteps) {
    ReparamPlugin::FireStageSettings s;
    s.name = "fire";
    s.maxSteps = maxSteps;
    s.dt = 0.002;
    s.dtMax = 0.02;
    s.dtMin = 2e-4;
    s.nDelay = 5;
    s.fInc = 1.1;
    s.fDec = 0.5;
    s.alphaStart = 0.25;
    s.fAlpha = 0.99;
    s.maxUphill = 20;
    s.maxStep = 0.02;
    s.toleranceFactor = 1.0;
    s.initialDelay = 1;
    s.timeLimit = -1.0;
    return s;
}

/** The precon L-BFGS, rebuilding its preconditioner once an atom has moved rebuildDistance nm. */
inline ReparamPlugin::PreconStageSettings preconStageSettings(int maxSteps, double rebuildDistance) {
    ReparamPlugin::PreconStageSettings s;
    s.name = "precon";
    s.maxSteps = maxSteps;
    s.memory = 10;
    s.rebuildDistance = rebuildDistance;
    s.maxStep = 0.03;
    s.toleranceFactor = 1.0;
    s.timeLimit = -1.0;
    return s;
}

#endif
