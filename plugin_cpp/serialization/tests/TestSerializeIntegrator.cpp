/*
 * XmlSerializer round trips of ReparamIntegrator on the chain of TestChain.h (Reference platform): with a linear
 * generator, and with a "torchscript" generator (a module built here with torch::jit, trained a few steps first),
 * each restored integrator holding the same settings and the same current weights.
 */
#include "ReparamIntegrator.h"
#include "TestChain.h"
#include "TestGenerators.h"
#include "TestStageSettings.h"
#include "TestUtilities.h"
#include "OpenMM.h"
#include "openmm/serialization/XmlSerializer.h"
#include <torch/csrc/jit/api/module.h>
#include <iostream>
#include <memory>
#include <sstream>
#include <vector>

using namespace ReparamPlugin;
using namespace OpenMM;

/** Train integrator a few steps on the chain, serialize it and deserialize the text. */
static std::unique_ptr<Integrator> trainAndRestore(ReparamIntegrator& integrator, std::string& xml) {
    std::unique_ptr<System> system(createChainSystem(false));
    Context context(*system, integrator, Platform::getPlatformByName("Reference"));
    context.setPositions(chainStartPositions());
    integrator.step(10);
    std::stringstream buffer;
    XmlSerializer::serialize<Integrator>(&integrator, "Integrator", buffer);
    xml = buffer.str();
    return std::unique_ptr<Integrator>(XmlSerializer::deserialize<Integrator>(buffer));
}

static void assertSamePositions(const ReparamGenerator& a, const ReparamGenerator& b) {
    std::vector<double> x = a.computePositions(), y = b.computePositions();
    REPARAM_ASSERT(x.size() == y.size() && !x.empty());
    for (size_t i = 0; i < x.size(); i++)
        REPARAM_ASSERT(x[i] == y[i]);
}

/** Same settings, same weights (after training). */
static void testLinearGenerator() {
    AdamStageSettings settings = adamStepSettings(0.02, 0.07);
    settings.clipNorm = 50.0;
    settings.collapseDistance = 0.05;
    ReparamIntegrator integrator(linearGenerator(chainStartPositions(), 5), settings);
    integrator.setIntegrationForceGroups(3);
    std::string xml;
    std::unique_ptr<Integrator> copy = trainAndRestore(integrator, xml);
    ReparamIntegrator* restored = dynamic_cast<ReparamIntegrator*>(copy.get());
    REPARAM_ASSERT(restored != NULL);
    const AdamStageSettings& s = restored->getSettings();
    REPARAM_ASSERT(s.lr == 0.02 && s.clipNorm == 50.0 && s.collapseDistance == 0.05 && s.spikeFactor == 3.0);
    REPARAM_ASSERT(s.relTol == 1e-5 && s.constraintStiffness == 1e4 && s.torchThreads == 1);
    REPARAM_ASSERT(restored->getIntegrationForceGroups() == 3);
    assertSamePositions(integrator.getGenerator(), restored->getGenerator());
}

/** X = x0 + w, w a learnable (N, 3) parameter starting at zero. */
static ReparamGenerator shiftGenerator() {
    std::vector<Vec3> start = chainStartPositions();
    at::Tensor x0 = at::empty({ChainLength, 3}, at::kDouble);
    for (int i = 0; i < ChainLength; i++)
        for (int j = 0; j < 3; j++)
            x0.data_ptr<double>()[3 * i + j] = start[i][j];
    torch::jit::Module module("Shift");
    module.register_parameter("w", at::zeros({ChainLength, 3}, at::kDouble).requires_grad_(true), false);
    module.register_buffer("x0", x0);
    module.define("def forward(self):\n    return self.x0 + self.w\n");
    std::ostringstream bytes;
    module.save(bytes);
    ReparamGenerator generator("torchscript");
    generator.setModule(bytes.str());
    return generator;
}

/** The module travels as base64 text with its trained parameters; the restored one computes the same X. */
static void testTorchScriptGenerator() {
    ReparamIntegrator integrator(shiftGenerator(), adamStepSettings(0.01, 0.07));
    std::string xml;
    std::unique_ptr<Integrator> copy = trainAndRestore(integrator, xml);
    REPARAM_ASSERT(xml.find("module=\"") != std::string::npos);
    ReparamIntegrator* restored = dynamic_cast<ReparamIntegrator*>(copy.get());
    REPARAM_ASSERT(restored != NULL && restored->getGenerator().getKind() == "torchscript");
    const ReparamGenerator& trained = integrator.getGenerator();
    bool moved = false;
    for (int e = 0; e < trained.getParameterSize(0); e++)
        moved = moved || trained.getParameterValue(0, e) != 0.0;
    REPARAM_ASSERT(moved);  // the saved module holds the trained w, not the one it was built with
    assertSamePositions(trained, restored->getGenerator());
    REPARAM_ASSERT(restored->getGenerator().getParameterName(0) == "w");
}

/** A module attribute that is not base64 is refused with a message, not loaded as garbage. */
static void testCorruptModuleText() {
    ReparamIntegrator integrator(shiftGenerator(), adamStepSettings(0.01, 0.07));
    std::stringstream buffer;
    XmlSerializer::serialize<Integrator>(&integrator, "Integrator", buffer);
    std::string xml = buffer.str();
    size_t at = xml.find("module=\"") + 8;
    xml.replace(at, 4, "%%%%");
    std::stringstream corrupt(xml);
    bool refused = false;
    try {
        std::unique_ptr<Integrator> copy(XmlSerializer::deserialize<Integrator>(corrupt));
    }
    catch (const OpenMMException& e) {
        refused = std::string(e.what()).find("base64") != std::string::npos;
    }
    REPARAM_ASSERT(refused);
}

int main() {
    try {
        testLinearGenerator();
        testTorchScriptGenerator();
        testCorruptModuleText();
    }
    catch (const std::exception& e) {
        std::cout << "exception: " << e.what() << std::endl;
        return 1;
    }
    std::cout << "Done" << std::endl;
    return 0;
}
