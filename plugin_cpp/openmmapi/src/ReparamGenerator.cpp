/* ReparamGenerator: libtorch evaluation of the slow-mode generators (see ReparamGenerator.h). */
#include "ReparamGenerator.h"
#include "openmm/OpenMMException.h"
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>
#include <sstream>

using namespace ReparamPlugin;
using OpenMM::OpenMMException;

namespace {

at::Tensor fromValues(const std::vector<double>& values, int rows, int cols, const std::string& name) {
    long long expected = (cols == 0 ? (long long) rows : (long long) rows * cols);
    if (rows < 0 || cols < 0 || expected != (long long) values.size()) {
        std::stringstream msg;
        msg << "ReparamGenerator: " << name << " has " << values.size() << " values, expected " << expected;
        throw OpenMMException(msg.str());
    }
    auto options = at::TensorOptions().dtype(at::kDouble);
    at::Tensor t = cols == 0 ? at::empty({rows}, options) : at::empty({rows, cols}, options);
    if (!values.empty())
        std::copy(values.begin(), values.end(), t.data_ptr<double>());
    return t;
}

at::Tensor cloneTensor(const at::Tensor& t) {
    return t.defined() ? t.detach().clone() : t;
}

/** The first line of an exception's message (torch's messages go on with a C++ or TorchScript backtrace). */
std::string firstLine(const std::exception& e) {
    std::string message = e.what();
    return message.substr(0, message.find('\n'));
}

} // namespace

/** The loaded TorchScript module of a "torchscript" generator; its parameters are the generator's. */
struct ReparamGenerator::Script {
    torch::jit::Module module;
};

ReparamGenerator::ReparamGenerator(const std::string& kindName) : layers(0), scale(1.0), numSolvent(0),
        moduleAtoms(0) {
    if (kindName == "gnn")
        kind = "gnn";
    else if (kindName == "linear" || kindName == "cg")
        kind = "linear";
    else if (kindName == "torchscript")
        kind = "torchscript";
    else
        throw OpenMMException("ReparamGenerator: unknown kind '" + kindName +
                              "' (expected gnn, linear, cg or torchscript)");
}

ReparamGenerator::ReparamGenerator(const ReparamGenerator& other) {
    *this = other;
}

ReparamGenerator& ReparamGenerator::operator=(const ReparamGenerator& other) {
    if (this == &other)
        return *this;
    kind = other.kind;
    layers = other.layers;
    scale = other.scale;
    parameterNames = other.parameterNames;
    modes = cloneTensor(other.modes);
    center = cloneTensor(other.center);
    residual = cloneTensor(other.residual);
    x0 = cloneTensor(other.x0);
    numSolvent = other.numSolvent;
    soluteIndex = cloneTensor(other.soluteIndex);
    solventIndex = cloneTensor(other.solventIndex);
    moduleAtoms = other.moduleAtoms;
    script.reset();
    params.clear();
    if (other.script) {
        // A module of its own, with the other's current values: saved and loaded again (a deep copy whose
        // parameters are leaves, as a loaded module's are).
        std::stringstream bytes;
        other.script->module.save(bytes);
        script = std::make_shared<Script>(Script{torch::jit::load(bytes)});
        for (const auto& named : script->module.named_parameters(true))
            if (named.value.requires_grad())
                params.push_back(named.value);
    }
    for (size_t i = params.size(); i < other.params.size(); i++)  // all, or the solvent coordinates after a module
        params.push_back(other.params[i].detach().clone().requires_grad_(true));
    return *this;
}

const std::string& ReparamGenerator::getKind() const {
    return kind;
}

void ReparamGenerator::setBuffer(const std::string& name, const std::vector<double>& values, int rows, int cols) {
    if (kind == "torchscript")
        throw OpenMMException("ReparamGenerator: a torchscript generator has no buffers (setModule gives it all)");
    at::Tensor t = fromValues(values, rows, cols, name);
    if (name == "modes") {
        if (t.dim() != 2)
            throw OpenMMException("ReparamGenerator: modes must be 2-D (N, k)");
        modes = t;
    }
    else if (name == "center")
        center = t.reshape({3});
    else if (name == "residual")
        residual = t.reshape({-1, 3});
    else if (name == "x0")
        x0 = t.reshape({-1, 3});
    else if (name == "scale")
        scale = values.at(0);
    else
        throw OpenMMException("ReparamGenerator: unknown buffer '" + name + "'");
}

void ReparamGenerator::setScale(double s) {
    scale = s;
}

void ReparamGenerator::addParameter(const std::string& name, const std::vector<double>& values, int rows, int cols) {
    if (kind == "torchscript")
        throw OpenMMException("ReparamGenerator: a torchscript generator's parameters are its module's (setModule)");
    if (hasSolvent())
        throw OpenMMException("ReparamGenerator: addParameter after setSolvent (the solvent coordinates come last)");
    params.push_back(fromValues(values, rows, cols, name).requires_grad_(true));
    parameterNames.push_back(name);
    if (kind == "gnn")
        layers = std::max(0, ((int) params.size() - 3) / 3);
}

void ReparamGenerator::setModule(const std::string& moduleBytes) {
    if (kind != "torchscript")
        throw OpenMMException("ReparamGenerator: setModule is for a torchscript generator, not " + kind);
    if (script || hasSolvent())
        throw OpenMMException("ReparamGenerator: setModule must be called once, before setSolvent");
    std::shared_ptr<Script> loaded;
    try {
        std::istringstream stream(moduleBytes);
        loaded = std::make_shared<Script>(Script{torch::jit::load(stream, c10::Device(c10::kCPU))});
    }
    catch (const std::exception& e) {
        throw OpenMMException("ReparamGenerator: not a TorchScript module (torch.jit.save bytes): " + firstLine(e));
    }
    at::Tensor x;
    try {
        at::NoGradGuard noGrad;
        c10::IValue out = loaded->module.forward(std::vector<c10::IValue>());
        if (!out.isTensor())
            throw OpenMMException("ReparamGenerator: the module's forward() must return a tensor, got " +
                                  out.tagKind());
        x = out.toTensor();
    }
    catch (const OpenMMException&) {
        throw;
    }
    catch (const std::exception& e) {
        throw OpenMMException("ReparamGenerator: the module's forward() failed: " + firstLine(e));
    }
    if (x.dim() != 2 || x.size(1) != 3 || x.size(0) == 0) {
        std::stringstream msg;
        msg << "ReparamGenerator: the module's forward() returned shape " << x.sizes() << ", expected (N, 3)";
        throw OpenMMException(msg.str());
    }
    std::vector<at::Tensor> moduleParams;
    std::vector<std::string> names;
    for (const auto& named : loaded->module.named_parameters(true))
        if (named.value.requires_grad()) {
            if (!named.value.is_floating_point())
                throw OpenMMException("ReparamGenerator: parameter " + named.name + " is not floating point");
            moduleParams.push_back(named.value);
            names.push_back(named.name);
        }
    if (moduleParams.empty())
        throw OpenMMException("ReparamGenerator: the module has no parameters that require grad");
    script = loaded;
    moduleAtoms = (int) x.size(0);
    params = moduleParams;
    parameterNames = names;
}

std::string ReparamGenerator::getModuleBytes() const {
    if (!script)
        throw OpenMMException("ReparamGenerator: getModuleBytes is for a torchscript generator with its module set");
    std::ostringstream bytes;
    script->module.save(bytes);
    return bytes.str();
}

int ReparamGenerator::getNumParameters() const {
    return (int) params.size();
}

const std::string& ReparamGenerator::getParameterName(int index) const {
    return parameterNames.at(index);
}

int ReparamGenerator::getParameterSize(int index) const {
    return (int) params.at(index).numel();
}

double ReparamGenerator::getParameterValue(int index, int element) const {
    const at::Tensor& p = params.at(index);
    if (element < 0 || element >= p.numel())
        throw OpenMMException("ReparamGenerator: parameter element out of range");
    return p.detach().to(at::kDouble).contiguous().data_ptr<double>()[element];
}

void ReparamGenerator::setParameterValues(int index, const std::vector<double>& values) {
    at::Tensor& p = params.at(index);
    if ((long long) values.size() != p.numel())
        throw OpenMMException("ReparamGenerator: wrong number of values for parameter " + parameterNames[index]);
    at::NoGradGuard noGrad;
    at::Tensor cpu = at::empty(p.sizes(), at::TensorOptions().dtype(at::kDouble));
    std::copy(values.begin(), values.end(), cpu.data_ptr<double>());
    p.copy_(cpu);
}

int ReparamGenerator::numInnerAtoms() const {
    if (kind == "torchscript")
        return moduleAtoms;
    return modes.defined() ? (int) modes.size(0) : 0;
}

int ReparamGenerator::getNumAtoms() const {
    return numInnerAtoms() + numSolvent;
}

void ReparamGenerator::setSolvent(const std::vector<int>& solute, const std::vector<int>& solvent,
                                  const std::vector<double>& coordinates) {
    if (hasSolvent())
        throw OpenMMException("ReparamGenerator: setSolvent was already called");
    if (solvent.empty())
        throw OpenMMException("ReparamGenerator: setSolvent needs at least one solvent atom");
    std::vector<bool> seen(solute.size() + solvent.size(), false);
    for (const std::vector<int>* indices : {&solute, &solvent})
        for (int i : *indices) {
            if (i < 0 || i >= (int) seen.size() || seen[i])
                throw OpenMMException("ReparamGenerator: the solute and solvent indices must partition 0..N-1");
            seen[i] = true;
        }
    auto indexTensor = [](const std::vector<int>& indices) {
        at::Tensor t = at::empty({(long) indices.size()}, at::TensorOptions().dtype(at::kLong));
        std::copy(indices.begin(), indices.end(), t.data_ptr<int64_t>());
        return t;
    };
    at::Tensor solventCoordinates = fromValues(coordinates, (int) solvent.size(), 3, "solvent_coordinates");
    soluteIndex = indexTensor(solute);
    solventIndex = indexTensor(solvent);
    params.push_back(solventCoordinates.requires_grad_(true));
    parameterNames.push_back("solvent_coordinates");
    numSolvent = (int) solvent.size();
}

void ReparamGenerator::getSolvent(std::vector<int>& solute, std::vector<int>& solvent) const {
    solute.clear();
    solvent.clear();
    if (!hasSolvent())
        return;
    solute.assign(soluteIndex.data_ptr<int64_t>(), soluteIndex.data_ptr<int64_t>() + soluteIndex.numel());
    solvent.assign(solventIndex.data_ptr<int64_t>(), solventIndex.data_ptr<int64_t>() + solventIndex.numel());
}

void ReparamGenerator::putSolventAt(const std::vector<OpenMM::Vec3>& positions) {
    if (!hasSolvent())
        return;
    at::NoGradGuard noGrad;
    double* c = params.back().data_ptr<double>();
    const int64_t* index = solventIndex.data_ptr<int64_t>();
    for (int i = 0; i < numSolvent; i++)
        for (int j = 0; j < 3; j++)
            c[3 * i + j] = positions[index[i]][j];
}

int ReparamGenerator::numInnerParameters() const {
    return (int) params.size() - (hasSolvent() ? 1 : 0);
}

int ReparamGenerator::getNumModes() const {
    return modes.defined() ? (int) modes.size(1) : 0;
}

void ReparamGenerator::validate() const {
    if (kind == "torchscript") {
        if (!script)
            throw OpenMMException("ReparamGenerator (torchscript): the module is not set (setModule)");
        if (hasSolvent() && soluteIndex.numel() != moduleAtoms)
            throw OpenMMException("ReparamGenerator (torchscript): the solute indices must match the module's atoms");
        return;
    }
    if (!modes.defined())
        throw OpenMMException("ReparamGenerator: the modes buffer is not set");
    long long n = modes.size(0), k = modes.size(1);
    size_t inner = numInnerParameters();
    auto check = [&](bool ok, const std::string& what) {
        if (!ok)
            throw OpenMMException("ReparamGenerator (" + kind + "): " + what);
    };
    check(!hasSolvent() || soluteIndex.numel() == n, "the solute indices must match the rows of the modes");
    if (kind == "linear") {
        check(x0.defined() && x0.size(0) == n, "x0 must be (N, 3)");
        check(inner == 1 && params[0].dim() == 2 && params[0].size(0) == k && params[0].size(1) == 3,
              "expects one parameter z of shape (k, 3)");
        return;
    }
    check(center.defined() && residual.defined() && residual.size(0) == n, "center (3) and residual (N, 3) must be set");
    check(inner >= 3 && (inner - 3) % 3 == 0, "parameters must be latent, 3 per layer, w_out, b_out");
    const at::Tensor& latent = params[0];
    check(latent.dim() == 2 && latent.size(0) == n, "latent must be (N, hidden)");
    long long h = latent.size(1);
    for (int l = 0; l < layers; l++) {
        check(params[1 + 3 * l].dim() == 2 && params[1 + 3 * l].size(0) == h && params[1 + 3 * l].size(1) == h,
              "weights must be (hidden, hidden)");
        check(params[2 + 3 * l].dim() == 2 && params[2 + 3 * l].size(0) == h && params[2 + 3 * l].size(1) == h,
              "self_weights must be (hidden, hidden)");
        check(params[3 + 3 * l].numel() == h, "biases must be (hidden)");
    }
    const at::Tensor& wOut = params[inner - 2];
    check(wOut.dim() == 2 && wOut.size(0) == (layers + 1) * h && wOut.size(1) == 3, "w_out must be ((L+1) hidden, 3)");
    check(params[inner - 1].numel() == 3, "b_out must be (3)");
}

at::Tensor ReparamGenerator::forward() const {
    at::Tensor inner = innerForward();
    if (!hasSolvent())
        return inner;
    at::Tensor x = at::zeros({(long) getNumAtoms(), 3}, inner.options());  // as SoluteGenerator.forward
    return x.index_copy(0, soluteIndex, inner).index_copy(0, solventIndex, params.back());
}

at::Tensor ReparamGenerator::innerForward() const {
    if (kind == "torchscript") {
        at::Tensor x = script->module.forward(std::vector<c10::IValue>()).toTensor();
        if (x.dim() != 2 || x.size(0) != moduleAtoms || x.size(1) != 3)
            throw OpenMMException("ReparamGenerator: the module's forward() changed its output shape");
        return x.to(at::kDouble);
    }
    if (kind == "linear")
        return x0 + modes.mm(params[0]);
    int inner = numInnerParameters();
    at::Tensor h = params[0];
    std::vector<at::Tensor> features{h};
    for (int l = 0; l < layers; l++) {
        at::Tensor propagated = modes.mm(modes.t().mm(h));  // same op order as the Python generator
        h = at::tanh(propagated.mm(params[1 + 3 * l]) + h.mm(params[2 + 3 * l]) + params[3 + 3 * l]);
        features.push_back(h);
    }
    at::Tensor y = at::cat(features, 1).mm(params[inner - 2]) + params[inner - 1];
    return center + scale * y + residual;
}

std::vector<double> ReparamGenerator::computePositions() const {
    validate();
    at::NoGradGuard noGrad;
    at::Tensor x = forward().contiguous();
    const double* data = x.data_ptr<double>();
    return std::vector<double>(data, data + x.numel());
}

std::vector<at::Tensor>& ReparamGenerator::parameters() {
    return params;
}

const std::vector<at::Tensor>& ReparamGenerator::parameters() const {
    return params;
}

namespace {

void tensorValues(const at::Tensor& t, std::vector<double>& values, int& rows, int& cols) {
    if (!t.defined()) {
        values.clear();
        rows = -1;
        cols = 0;
        return;
    }
    at::Tensor cpu = t.detach().to(at::kDouble).contiguous();
    values.assign(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
    rows = cpu.dim() == 0 ? 1 : (int) cpu.size(0);
    cols = cpu.dim() == 2 ? (int) cpu.size(1) : 0;
}

} // namespace

void ReparamGenerator::getBuffer(const std::string& name, std::vector<double>& values, int& rows, int& cols) const {
    if (name == "modes")
        tensorValues(modes, values, rows, cols);
    else if (name == "center")
        tensorValues(center, values, rows, cols);
    else if (name == "residual")
        tensorValues(residual, values, rows, cols);
    else if (name == "x0")
        tensorValues(x0, values, rows, cols);
    else
        throw OpenMMException("ReparamGenerator: unknown buffer '" + name + "'");
}

void ReparamGenerator::getParameter(int index, std::vector<double>& values, int& rows, int& cols) const {
    tensorValues(params.at(index), values, rows, cols);
}
