"""Evaluation: full ranking on device, metrics, comparison of runs."""
