"""Benchmarks reproducing the experiments of Dehmamy et al. (NeurIPS 2024) against OpenMM's minimizer."""
