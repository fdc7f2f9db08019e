"""Calibration: fit efficiency and stack parameters to measured runs, cross-validate, bands."""
