"""The compiled openmm-reparam plugin: ``pip install`` builds plugin_cpp/ and puts its libraries and SWIG module
(``reparamplugin``) here; :mod:`openmm_reparam.engines.compiled` loads them (torch first: they link libtorch)."""
