"""Importers: model shapes from Hugging Face ``config.json`` files, plans and shapes from
Megatron-LM / MindSpeed-LLM launch arguments."""
from estimator.importers.hf_config import load_hf_config, model_from_hf_config
from estimator.importers.launch_args import LaunchArgs, load_launch_args, parse_launch_args, shape_diff

__all__ = ["model_from_hf_config", "load_hf_config", "parse_launch_args", "load_launch_args", "LaunchArgs",
           "shape_diff"]
