/*
 * SWIG wrapper of the openmm-reparam plugin. It %imports OpenMM's own SWIG declarations, so
 * ReparamIntegrator is a real openmm.Integrator (usable in Context, CompoundIntegrator, Simulation) and
 * Context / MinimizationReporter arguments accept OpenMM's Python objects (including Python subclasses of
 * MinimizationReporter, which are SWIG directors).
 */
%module reparamplugin

%pythonbegin %{
import openmm  # the OpenMM types this module builds on must be registered first
%}

%{
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include "OpenMM.h"
#include "OpenMMAmoeba.h"
#include "OpenMMDrude.h"
#include "openmm/RPMDIntegrator.h"
#include "openmm/RPMDMonteCarloBarostat.h"
#include "ReparamGenerator.h"
#include "ReparamIntegrator.h"
#include "ReparamStages.h"
#include "ReparamTiming.h"

/* OpenMM's typemaps (swig/typemaps.i) take a numpy fast path when this says numpy is loaded. */
static bool isNumpyAvailable() {
    return true;
}
%}

%init %{
    import_array();
%}

%import(module="openmm") "swig/OpenMMSwigHeaders.i"
%include "swig/typemaps.i"
%include <std_string.i>

/* Convert C++ exceptions to Python exceptions (OpenMMException -> openmm.OpenMMException). */
%exception {
    try {
        $action
    } catch (std::exception &e) {
        PyObject* mm = PyImport_AddModule("openmm");
        PyObject* openmm_exception = mm ? PyObject_GetAttrString(mm, "OpenMMException") : NULL;
        PyErr_SetString(openmm_exception ? openmm_exception : PyExc_Exception, const_cast<char*>(e.what()));
        Py_XDECREF(openmm_exception);
        return NULL;
    }
}

/*
 * The long-running calls release the Python lock when no Python reporter can be called back, as OpenMM's own
 * LocalEnergyMinimizer wrapper does: a TorchForce in the System runs torch's autograd inside the force
 * evaluation, and torch refuses to do that while the calling thread holds the lock.
 */
%define RELEASE_GIL_WHEN(condition)
    PyThreadState* released = (condition) ? PyEval_SaveThread() : NULL;
    try {
        $action
    } catch (std::exception &e) {
        if (released != NULL)
            PyEval_RestoreThread(released);
        PyObject* mm = PyImport_AddModule("openmm");
        PyObject* openmm_exception = mm ? PyObject_GetAttrString(mm, "OpenMMException") : NULL;
        PyErr_SetString(openmm_exception ? openmm_exception : PyExc_Exception, const_cast<char*>(e.what()));
        Py_XDECREF(openmm_exception);
        return NULL;
    }
    if (released != NULL)
        PyEval_RestoreThread(released);
%enddef

%exception ReparamPlugin::runReparamStages {
    RELEASE_GIL_WHEN(arg5 == NULL)
}
%exception ReparamPlugin::ReparamIntegrator::step {
    RELEASE_GIL_WHEN(true)
}

namespace ReparamPlugin {

class ReparamGenerator {
public:
    ReparamGenerator(const std::string& kind);
    const std::string& getKind() const;
    void setBuffer(const std::string& name, const std::vector<double>& values, int rows, int cols);
    void setScale(double scale);
    void addParameter(const std::string& name, const std::vector<double>& values, int rows, int cols);
    int getNumParameters() const;
    const std::string& getParameterName(int index) const;
    int getParameterSize(int index) const;
    double getParameterValue(int index, int element) const;
    void setParameterValues(int index, const std::vector<double>& values);
    int getNumAtoms() const;
    int getNumModes() const;
    void validate() const;
    %extend {
        /** The generator output X (N*3 values, row-major, nm) as a tuple. */
        PyObject* _computePositions() const {
            std::vector<double> x = self->computePositions();
            PyObject* result = PyTuple_New(x.size());
            for (size_t i = 0; i < x.size(); i++)
                PyTuple_SET_ITEM(result, i, PyFloat_FromDouble(x[i]));
            return result;
        }
        /** All values of parameter index (row-major) as a tuple. */
        PyObject* _getParameterValues(int index) const {
            int n = self->getParameterSize(index);
            PyObject* result = PyTuple_New(n);
            for (int i = 0; i < n; i++)
                PyTuple_SET_ITEM(result, i, PyFloat_FromDouble(self->getParameterValue(index, i)));
            return result;
        }
    }
};

class ReparamIntegrator : public OpenMM::Integrator {
public:
    ReparamIntegrator(const ReparamGenerator& generator, double learningRate = 1e-3);
    void step(int steps);
    double getLearningRate() const;
    void setLearningRate(double lr);
    double getClipNorm() const;
    void setClipNorm(double norm);
    double getConstraintStiffness() const;
    void setConstraintStiffness(double k);
    double getRelativeTolerance() const;
    void setRelativeTolerance(double tol);
    int getTorchThreads() const;
    void setTorchThreads(int threads);
    double getLastLoss() const;
    double getLastEnergy() const;
    double getBestLoss() const;
    double getBestEnergy() const;
    int getStepsSinceImprovement() const;
    int getNumStepsTaken() const;
    void applyBestPositions();
    void reset();
    const ReparamGenerator& getGenerator() const;
};

class ReparamOptions {
public:
    ReparamOptions();
    int steps;
    int fineSteps;
    int patience;
    int finePatience;
    double lr;
    double fineLr;
    double clipNorm;
    double relTol;
    double constraintStiffness;
    bool polish;
    double timeBudget;
    double reparamShare;
    double timeOffset;
    int maxIterations;
    int iterationOffset;
    int torchThreads;
    double collapseDistance;
    double spikeFactor;
    int polishRounds;
    std::string fineStageName;
};

class ReparamStageStats {
public:
    std::string name;
    int iterations;
    int energyEvaluations;
    double wallTime;
    double initialEnergy;
    double finalEnergy;
    bool collapsed;
};

class ReparamRunResult {
public:
    int getNumStages() const;
    bool getStopped() const;
    const ReparamStageStats& getStage(int index) const;
    int getHistorySize() const;
    int getHistoryStage(int i) const;
    int getHistoryIteration(int i) const;
    double getHistoryTime(int i) const;
    double getHistoryEnergy(int i) const;
};

ReparamRunResult runReparamStages(OpenMM::Context& context, ReparamGenerator* generator, const ReparamOptions& options,
                                  double tolerance, OpenMM::MinimizationReporter* reporter);

double timeForceEvaluation(OpenMM::Context& context, int repeats);

}
