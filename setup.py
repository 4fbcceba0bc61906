"""Install openmm-reparam: the Python package (and, see plugin_cpp/, the compiled OpenMM plugin)."""
from setuptools import find_packages, setup

setup(
    name="openmm-reparam",
    version="0.1.0",
    description="Energy minimization for OpenMM by neural-network reparametrization over slow modes",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["openmm_reparam", "openmm_reparam.*"]),
    python_requires=">=3.9",
    install_requires=["openmm>=8.1", "torch>=2.1", "numpy", "scipy"],
    extras_require={"pdb": ["pdbfixer", "mdtraj", "matplotlib"], "torchforce": ["openmmtorch"],
                    "test": ["pytest", "pdbfixer", "mdtraj", "matplotlib", "openmmtorch"]},
    entry_points={"console_scripts": ["openmm-reparam=openmm_reparam.cli:main"]},
)
