"""Configuration: hyperparameter dataclasses, YAML files, per-env presets."""

from rlkit.config.hyperparameters import (
    UnknownHyperparameterError,
    check_known,
    coerce,
    config_to_dict,
    field_names,
    make_config,
    parse_value,
    require,
)

__all__ = [
    "UnknownHyperparameterError",
    "check_known",
    "coerce",
    "config_to_dict",
    "field_names",
    "make_config",
    "parse_value",
    "require",
]
