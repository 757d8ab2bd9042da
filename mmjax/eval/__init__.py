"""Evaluation: full ranking on device, metrics, beyond-accuracy, run comparison."""
