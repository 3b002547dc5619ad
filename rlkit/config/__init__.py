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
from rlkit.config.rules import (
    OneOf,
    Range,
    Rule,
    Satisfies,
    Sizes,
    check_arguments,
    check_config,
    describe_rules,
    rules_of,
)

__all__ = [
    "OneOf",
    "Range",
    "Rule",
    "Satisfies",
    "Sizes",
    "UnknownHyperparameterError",
    "check_arguments",
    "check_config",
    "check_known",
    "coerce",
    "config_to_dict",
    "describe_rules",
    "field_names",
    "make_config",
    "parse_value",
    "require",
    "rules_of",
]
