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
#include "AdamStage.h"
#include "AdamStageSettings.h"
#include "DeviceAdamStage.h"
#include "DeviceFireStage.h"
#include "DeviceKernelCache.h"
#include "DevicePreconStage.h"
#include "FireStage.h"
#include "FireStageSettings.h"
#include "NonFiniteEnergyException.h"
#include "PreconMatrix.h"
#include "PreconStage.h"
#include "PreconStageSettings.h"
#include "ReparamGenerator.h"
#include "ReparamIntegrator.h"
#include "ReparamTiming.h"
#include "StopReporter.h"
#include "StopRequest.h"

/* OpenMM's typemaps (swig/typemaps.i) take a numpy fast path when this says numpy is loaded. */
static bool isNumpyAvailable() {
    return true;
}

/* A C++ exception as a Python one: NonFiniteEnergyException (by type) ->
 * openmm_reparam.core.errors.NonFiniteEnergyError, anything else -> openmm.OpenMMException; except that a
 * KeyboardInterrupt raised in a Python reporter (a Ctrl-C, which SWIG's director turned into a C++ exception)
 * goes on as the KeyboardInterrupt. */
static void reparamSetPythonError(const std::exception& e) {
    if (PyErr_Occurred() != NULL && PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))
        return;
    PyObject* type = NULL;
    if (dynamic_cast<const ReparamPlugin::NonFiniteEnergyException*>(&e) != NULL) {
        PyObject* errors = PyImport_ImportModule("openmm_reparam.core.errors");
        type = errors ? PyObject_GetAttrString(errors, "NonFiniteEnergyError") : NULL;
        Py_XDECREF(errors);
    }
    if (type == NULL) {
        PyErr_Clear();
        PyObject* mm = PyImport_AddModule("openmm");
        type = mm ? PyObject_GetAttrString(mm, "OpenMMException") : NULL;
    }
    PyErr_SetString(type ? type : PyExc_Exception, e.what());
    Py_XDECREF(type);
}

/* An AdamStageOutcome history array as a tuple of floats. */
static PyObject* reparamTuple(const std::vector<double>& values) {
    PyObject* result = PyTuple_New(values.size());
    for (size_t i = 0; i < values.size(); i++)
        PyTuple_SET_ITEM(result, i, PyFloat_FromDouble(values[i]));
    return result;
}

/* A settings class's field names as a tuple of str. */
static PyObject* reparamNames(const std::vector<std::string>& names) {
    PyObject* result = PyTuple_New(names.size());
    for (size_t i = 0; i < names.size(); i++)
        PyTuple_SET_ITEM(result, i, PyUnicode_FromString(names[i].c_str()));
    return result;
}
%}

%init %{
    import_array();
%}

%import(module="openmm") "swig/OpenMMSwigHeaders.i"
%include "swig/typemaps.i"
%include <std_string.i>

/* Convert C++ exceptions to Python exceptions (see reparamSetPythonError). */
%exception {
    try {
        $action
    } catch (std::exception &e) {
        reparamSetPythonError(e);
        return NULL;
    }
}

/*
 * The long-running calls release the Python lock when no Python reporter can be called back, as OpenMM's own
 * LocalEnergyMinimizer wrapper does: a TorchForce in the System runs torch's autograd inside the force
 * evaluation, and torch refuses to do that while the calling thread holds the lock. Meanwhile Python runs no
 * signal handler in this thread: the stages see a Ctrl-C through the stop request (StopRequest.h).
 */
%define RELEASE_GIL_WHEN(condition)
    PyThreadState* released = (condition) ? PyEval_SaveThread() : NULL;
    try {
        $action
    } catch (std::exception &e) {
        if (released != NULL)
            PyEval_RestoreThread(released);
        reparamSetPythonError(e);
        return NULL;
    }
    if (released != NULL)
        PyEval_RestoreThread(released);
%enddef

/* The exception handler of one long-running call: the lock released while condition holds (argN: its Nth
 * argument, the object first for a method). */
%define RELEASES_GIL(call, condition)
%exception call {
    RELEASE_GIL_WHEN(condition)
}
%enddef

/* The long-running calls, each with the condition under which it releases the lock (no Python reporter). */
%formacro_2(RELEASES_GIL,
    ReparamPlugin::runAdamStage, arg4 == NULL,
    ReparamPlugin::runFireStage, arg4 == NULL,
    ReparamPlugin::PreconStage::run, arg4 == NULL,
    ReparamPlugin::PreconStage::PreconStage, true,
    ReparamPlugin::runDeviceAdamStage, true,
    ReparamPlugin::runDeviceGeneratorStage, true,
    ReparamPlugin::runDeviceFireStage, true,
    ReparamPlugin::runDevicePreconStage, true,
    ReparamPlugin::runLocalEnergyMinimizer, true,
    ReparamPlugin::ReparamIntegrator::step, true,
    ReparamPlugin::timeForceEvaluation, true)

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
    bool hasSolvent() const;
    void validate() const;
    %extend {
        /** setModule with the bytes torch.jit.save wrote, as a Python bytes object (binary, kept whole). */
        void _setModule(PyObject* data) {
            char* buffer = NULL;
            Py_ssize_t size = 0;
            if (!PyBytes_Check(data) || PyBytes_AsStringAndSize(data, &buffer, &size) != 0) {
                PyErr_Clear();
                throw OpenMM::OpenMMException("ReparamGenerator: setModule takes the bytes torch.jit.save wrote");
            }
            self->setModule(std::string(buffer, (size_t) size));
        }
        /** setSolvent with the indices as numbers (OpenMM's typemaps convert sequences to std::vector<double>). */
        void setSolvent(const std::vector<double>& solute, const std::vector<double>& solvent,
                        const std::vector<double>& coordinates) {
            self->setSolvent(std::vector<int>(solute.begin(), solute.end()),
                             std::vector<int>(solvent.begin(), solvent.end()), coordinates);
        }
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
            std::vector<double> values;  // one conversion to float64 (the module of a torchscript one may be float32)
            int rows, cols;
            self->getParameter(index, values, rows, cols);
            PyObject* result = PyTuple_New(values.size());
            for (size_t i = 0; i < values.size(); i++)
                PyTuple_SET_ITEM(result, i, PyFloat_FromDouble(values[i]));
            return result;
        }
    }
};

class AdamStageSettings {
public:
    AdamStageSettings();
    double lr;
    double clipNorm;
    double relTol;
    double collapseDistance;
    double spikeFactor;
    double constraintStiffness;
    int torchThreads;
    std::string name;
    int maxSteps;
    int patience;
    int progressWindow;
    double progressFraction;
    double forceTolerance;
    double timeLimit;
    void validateStep() const;
    void validate() const;
    %extend {
        /** The C++ field names (camelCase), as a tuple. */
        static PyObject* fieldNames() {
            return reparamNames(ReparamPlugin::AdamStageSettings::fieldNames());
        }
    }
};

class FireStageSettings {
public:
    FireStageSettings();
    std::string name;
    int maxSteps;
    double dt;
    double dtMax;
    double dtMin;
    int nDelay;
    double fInc;
    double fDec;
    double alphaStart;
    double fAlpha;
    int maxUphill;
    double maxStep;
    double toleranceFactor;
    int initialDelay;
    double timeLimit;
    void validate() const;
    %extend {
        /** The C++ field names (camelCase), as a tuple. */
        static PyObject* fieldNames() {
            return reparamNames(ReparamPlugin::FireStageSettings::fieldNames());
        }
    }
};

class FireStageOutcome {
public:
    int iterations;
    int energyEvaluations;
    double wallTime;
    double initialEnergy;
    double finalEnergy;
    double finalRmsForce;
    std::string stopReason;
    int cpuForceEvaluations;
    int getHistorySize() const;
    %extend {
        /** Energy of each recorded step (kJ/mol), as a tuple. */
        PyObject* _energies() const {
            return reparamTuple(self->energies);
        }
        /** Seconds from the stage start to each recorded step, as a tuple. */
        PyObject* _times() const {
            return reparamTuple(self->times);
        }
    }
};

class PreconStageSettings {
public:
    PreconStageSettings();
    std::string name;
    int maxSteps;
    int memory;
    double rebuildDistance;
    double maxStep;
    double toleranceFactor;
    double timeLimit;
    void validate() const;
    %extend {
        /** The C++ field names (camelCase), as a tuple. */
        static PyObject* fieldNames() {
            return reparamNames(ReparamPlugin::PreconStageSettings::fieldNames());
        }
    }
};

class PreconMatrix {
public:
    PreconMatrix(int n, const std::vector<double>& indptr, const std::vector<double>& indices,
                 const std::vector<double>& values);
    int size() const;
    long envelopeSize() const;
    %extend {
        /** P^-1 v for v of n x 3 values (row-major), as a tuple. */
        PyObject* _solve(const std::vector<double>& v) const {
            std::vector<double> w = v;
            self->solve(w);
            return reparamTuple(w);
        }
    }
};

class PreconStageOutcome {
public:
    int iterations;
    int energyEvaluations;
    double wallTime;
    double initialEnergy;
    double finalEnergy;
    double finalRmsForce;
    int rebuilds;
    bool reporterStopped;
    std::string stopReason;
    int cpuForceEvaluations;
    int getHistorySize() const;
    %extend {
        /** Energy of each recorded step (kJ/mol), as a tuple. */
        PyObject* _energies() const {
            return reparamTuple(self->energies);
        }
        /** Seconds from the stage start to each recorded step, as a tuple. */
        PyObject* _times() const {
            return reparamTuple(self->times);
        }
    }
};

class PreconStage {
public:
    %extend {
        /** coupled: particle indices as numbers (OpenMM's typemaps convert sequences to std::vector<double>). */
        PreconStage(OpenMM::Context& context, const PreconStageSettings& settings, const PreconMatrix& precon,
                    const std::vector<double>& coupled, double tolerance) {
            return new ReparamPlugin::PreconStage(context, settings, precon,
                                                  std::vector<int>(coupled.begin(), coupled.end()), tolerance);
        }
        /** The current iterate (3N values, nm), as a tuple. */
        PyObject* _positions() const {
            return reparamTuple(self->getPositions());
        }
    }
    PreconStageOutcome run(int maxSteps, bool stopped, OpenMM::MinimizationReporter* reporter);
    void setPreconditioner(const PreconMatrix& precon);
    void leaveContext();
    double getEnergy() const;
};

class AdamStageOutcome {
public:
    int iterations;
    int energyEvaluations;
    double wallTime;
    double initialEnergy;
    double bestEnergy;
    bool collapsed;
    std::string stopReason;
    int cpuForceEvaluations;
    int getHistorySize() const;
    %extend {
        /** Energy of each recorded step (kJ/mol), as a tuple. */
        PyObject* _energies() const {
            return reparamTuple(self->energies);
        }
        /** Seconds from the stage start to each recorded step, as a tuple. */
        PyObject* _times() const {
            return reparamTuple(self->times);
        }
    }
};

class ReparamIntegrator : public OpenMM::Integrator {
public:
    ReparamIntegrator(const ReparamGenerator& generator, const AdamStageSettings& settings);
    void step(int steps);
    const AdamStageSettings& getSettings() const;
    double getLastEnergy() const;
    double getBestEnergy() const;
    int getStepsSinceImprovement() const;
    int getNumStepsTaken() const;
    bool getCollapsed() const;
    void applyBestPositions();
    const ReparamGenerator& getGenerator() const;
};

AdamStageOutcome runAdamStage(OpenMM::Context& context, ReparamGenerator* generator, const AdamStageSettings& settings,
                              OpenMM::MinimizationReporter* reporter);

FireStageOutcome runFireStage(OpenMM::Context& context, const FireStageSettings& settings, double tolerance,
                              OpenMM::MinimizationReporter* reporter);

double timeForceEvaluation(OpenMM::Context& context, int repeats);

bool deviceAdamAvailable(OpenMM::Context& context);

AdamStageOutcome runDeviceAdamStage(OpenMM::Context& context, const AdamStageSettings& settings);

AdamStageOutcome runDeviceGeneratorStage(OpenMM::Context& context, ReparamGenerator& generator,
                                         const AdamStageSettings& settings);

bool deviceFireAvailable(OpenMM::Context& context);

/** Device stage kernels created and programs compiled in this process (DeviceKernelCache.h). */
struct DeviceStageCounts {
    int kernelsCreated;
    int programsCompiled;
};
DeviceStageCounts getDeviceStageCounts();

FireStageOutcome runDeviceFireStage(OpenMM::Context& context, const FireStageSettings& settings, double tolerance);

bool devicePreconAvailable(OpenMM::Context& context);

class LocalMinimizerOutcome {
public:
    int iterations;
    double wallTime;
    std::string stopReason;
    int getHistorySize() const;
    %extend {
        /** "system energy" of each iteration (kJ/mol), as a tuple. */
        PyObject* _energies() const {
            return reparamTuple(self->energies);
        }
        /** Seconds from the call to each iteration, as a tuple. */
        PyObject* _times() const {
            return reparamTuple(self->times);
        }
        /** The last report's positions (nm) and gradient (kJ/mol/nm), 3N values each, as tuples (empty without
         *  a report). */
        PyObject* _lastPositions() const {
            return reparamTuple(self->lastPositions);
        }
        PyObject* _lastGradient() const {
            return reparamTuple(self->lastGradient);
        }
    }
};

LocalMinimizerOutcome runLocalEnergyMinimizer(OpenMM::Context& context, double tolerance, int maxIterations,
                                              double timeLimit);

void requestStop();
bool stopRequested();
void clearStopRequest();
void beginInterruptWatch();
void endInterruptWatch();
int interruptWatchCount();

}

%inline %{
namespace ReparamPlugin {
/** runDevicePreconStage with the coupled particle indices as numbers (OpenMM's typemaps give std::vector<double>). */
PreconStageOutcome runDevicePreconStage(OpenMM::Context& context, const PreconStageSettings& settings,
                                        const PreconMatrix& precon, const std::vector<double>& coupled,
                                        double tolerance) {
    return runDevicePreconStage(context, settings, precon, std::vector<int>(coupled.begin(), coupled.end()),
                                tolerance);
}
}
%}
