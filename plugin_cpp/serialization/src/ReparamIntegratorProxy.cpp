/*
 * XmlSerializer support for ReparamIntegrator: the generator (kind, buffers, current weights; a "torchscript"
 * generator's module, saved with its current parameters, as base64 text) and the step fields of its
 * AdamStageSettings. The Adam moments and the best point are not stored: a deserialized integrator continues
 * from the saved weights with a fresh optimizer. Arrays are stored as strings of round-trip exact ("%.17g")
 * numbers.
 */
#include "ReparamIntegrator.h"
#include "openmm/OpenMMException.h"
#include "openmm/serialization/SerializationNode.h"
#include "openmm/serialization/SerializationProxy.h"
#include <cstdio>
#include <cstring>
#include <sstream>

using namespace ReparamPlugin;
using namespace OpenMM;

namespace {

std::string encode(const std::vector<double>& values) {
    std::string text;
    char buffer[32];
    for (size_t i = 0; i < values.size(); i++) {
        std::snprintf(buffer, sizeof(buffer), i == 0 ? "%.17g" : " %.17g", values[i]);
        text += buffer;
    }
    return text;
}

std::vector<double> decode(const std::string& text) {
    std::vector<double> values;
    std::istringstream stream(text);
    std::string token;
    while (stream >> token)
        values.push_back(std::stod(token));
    return values;
}

const char BASE64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Binary bytes as base64 text (RFC 4648, with padding), which an XML attribute can hold. */
std::string toBase64(const std::string& bytes) {
    std::string text;
    text.reserve(4 * ((bytes.size() + 2) / 3));
    for (size_t i = 0; i < bytes.size(); i += 3) {
        unsigned int chunk = (unsigned char) bytes[i] << 16;
        if (i + 1 < bytes.size())
            chunk |= (unsigned char) bytes[i + 1] << 8;
        if (i + 2 < bytes.size())
            chunk |= (unsigned char) bytes[i + 2];
        text += BASE64[(chunk >> 18) & 63];
        text += BASE64[(chunk >> 12) & 63];
        text += i + 1 < bytes.size() ? BASE64[(chunk >> 6) & 63] : '=';
        text += i + 2 < bytes.size() ? BASE64[chunk & 63] : '=';
    }
    return text;
}

std::string fromBase64(const std::string& text) {
    std::string bytes;
    unsigned int chunk = 0;
    int bits = 0;
    for (char c : text) {
        if (c == '=')
            break;
        const char* at = std::strchr(BASE64, c);
        if (c == '\0' || at == NULL)
            throw OpenMMException("ReparamIntegrator: the torchscript module's text is not base64");
        chunk = (chunk << 6) | (unsigned int) (at - BASE64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes += (char) ((chunk >> bits) & 255);
        }
    }
    return bytes;
}

void writeArray(SerializationNode& parent, const std::string& tag, const std::string& name,
                const std::vector<double>& values, int rows, int cols) {
    parent.createChildNode(tag).setStringProperty("name", name).setIntProperty("rows", rows)
          .setIntProperty("cols", cols).setStringProperty("values", encode(values));
}

class ReparamIntegratorProxy : public SerializationProxy {
public:
    ReparamIntegratorProxy() : SerializationProxy("ReparamIntegrator") {
    }
    void serialize(const void* object, SerializationNode& node) const override {
        const ReparamIntegrator& integrator = *reinterpret_cast<const ReparamIntegrator*>(object);
        const ReparamGenerator& generator = integrator.getGenerator();
        const AdamStageSettings& settings = integrator.getSettings();
        node.setIntProperty("version", 2);
        node.setDoubleProperty("lr", settings.lr);
        node.setDoubleProperty("clipNorm", settings.clipNorm);
        node.setDoubleProperty("relTol", settings.relTol);
        node.setDoubleProperty("collapseDistance", settings.collapseDistance);
        node.setDoubleProperty("spikeFactor", settings.spikeFactor);
        node.setDoubleProperty("constraintStiffness", settings.constraintStiffness);
        node.setIntProperty("torchThreads", settings.torchThreads);
        node.setDoubleProperty("constraintTolerance", integrator.getConstraintTolerance());
        node.setIntProperty("integrationForceGroups", integrator.getIntegrationForceGroups());
        SerializationNode& gen = node.createChildNode("Generator");
        gen.setStringProperty("kind", generator.getKind());
        gen.setDoubleProperty("scale", generator.getScale());
        std::vector<double> values;
        int rows, cols;
        for (const std::string& name : {"modes", "center", "residual", "x0"}) {
            generator.getBuffer(name, values, rows, cols);
            if (rows >= 0)
                writeArray(gen, "Buffer", name, values, rows, cols);
        }
        int numParameters = generator.getNumParameters() - (generator.hasSolvent() ? 1 : 0);
        if (generator.getKind() == "torchscript")
            gen.setStringProperty("module", toBase64(generator.getModuleBytes()));
        for (int i = 0; i < numParameters && generator.getKind() != "torchscript"; i++) {
            generator.getParameter(i, values, rows, cols);
            writeArray(gen, "Parameter", generator.getParameterName(i), values, rows, cols);
        }
        if (generator.hasSolvent()) {
            std::vector<int> solute, solvent;
            generator.getSolvent(solute, solvent);
            generator.getParameter(numParameters, values, rows, cols);
            SerializationNode& solventNode = gen.createChildNode("Solvent");
            solventNode.setStringProperty("solute", encode(std::vector<double>(solute.begin(), solute.end())));
            solventNode.setStringProperty("solvent", encode(std::vector<double>(solvent.begin(), solvent.end())));
            solventNode.setStringProperty("coordinates", encode(values));
        }
    }
    void* deserialize(const SerializationNode& node) const override {
        if (node.getIntProperty("version") != 2)
            throw OpenMMException("Unsupported version number for ReparamIntegrator");
        const SerializationNode& gen = node.getChildNode("Generator");
        ReparamGenerator generator(gen.getStringProperty("kind"));
        generator.setScale(gen.getDoubleProperty("scale"));
        if (gen.hasProperty("module"))
            generator.setModule(fromBase64(gen.getStringProperty("module")));
        for (const SerializationNode& child : gen.getChildren()) {
            if (child.getName() == "Solvent")
                continue;
            std::vector<double> values = decode(child.getStringProperty("values"));
            if (child.getName() == "Buffer")
                generator.setBuffer(child.getStringProperty("name"), values, child.getIntProperty("rows"),
                                    child.getIntProperty("cols"));
            else if (child.getName() == "Parameter")
                generator.addParameter(child.getStringProperty("name"), values, child.getIntProperty("rows"),
                                       child.getIntProperty("cols"));
        }
        for (const SerializationNode& child : gen.getChildren())
            if (child.getName() == "Solvent") {
                std::vector<double> solute = decode(child.getStringProperty("solute"));
                std::vector<double> solvent = decode(child.getStringProperty("solvent"));
                generator.setSolvent(std::vector<int>(solute.begin(), solute.end()),
                                     std::vector<int>(solvent.begin(), solvent.end()),
                                     decode(child.getStringProperty("coordinates")));
            }
        AdamStageSettings settings;
        settings.lr = node.getDoubleProperty("lr");
        settings.clipNorm = node.getDoubleProperty("clipNorm");
        settings.relTol = node.getDoubleProperty("relTol");
        settings.collapseDistance = node.getDoubleProperty("collapseDistance");
        settings.spikeFactor = node.getDoubleProperty("spikeFactor");
        settings.constraintStiffness = node.getDoubleProperty("constraintStiffness");
        settings.torchThreads = node.getIntProperty("torchThreads");
        ReparamIntegrator* integrator = new ReparamIntegrator(generator, settings);
        integrator->setConstraintTolerance(node.getDoubleProperty("constraintTolerance"));
        integrator->setIntegrationForceGroups(node.getIntProperty("integrationForceGroups"));
        return integrator;
    }
};

/** Registers the proxy when the library is loaded (this plugin is linked, not loaded as an OpenMM plugin). */
struct RegisterProxy {
    RegisterProxy() {
        SerializationProxy::registerProxy(typeid(ReparamIntegrator), new ReparamIntegratorProxy());
    }
} registerProxy;

} // namespace
