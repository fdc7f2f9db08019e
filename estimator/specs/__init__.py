"""Pydantic spec models: hardware (chip, system), efficiency parameters, model architecture."""
from estimator.specs.common import Sourced, Confidence
from estimator.specs.chip import ChipSpec, PRECISIONS
from estimator.specs.system import SystemSpec
from estimator.specs.model import ModelSpec
from estimator.specs.efficiency import EfficiencySpec, EfficiencyFile
from estimator.specs.stack import StackFile, StackSpec

__all__ = [
    "Sourced", "Confidence", "ChipSpec", "PRECISIONS", "SystemSpec", "ModelSpec",
    "EfficiencySpec", "EfficiencyFile", "StackFile", "StackSpec",
]
