"""The YAML config: the frozen `StudySpec` a study or a single run is asked to do, and loading it.

`load_config` turns a file into a `StudySpec` or raises one `ConfigError` that lists
every problem with its field path; nothing is started before a config has loaded.
"""

from __future__ import annotations

from tuner.config.load import ConfigError, load_config, parse_config
from tuner.config.spec import (
    DEFAULT_STEADY_S,
    EMBEDDED,
    ClusterSpec,
    ConfirmSpec,
    ConstraintsSpec,
    ConsumerSpec,
    FaultSpec,
    HandlerSpec,
    LocustSpec,
    MetricsSpec,
    NetworkSpec,
    ObjectiveSpec,
    PayloadsSpec,
    ProcessingSpec,
    ProducerSpec,
    SearchSpec,
    SecuritySpec,
    ServiceSpec,
    ShapeSpec,
    SizeSpec,
    StudyMetaSpec,
    StudySpec,
    TopicSpec,
    TrialSpec,
    WorkloadSpec,
    describe_path,
)
from tuner.settings import ParameterSpec, SettingValue

__all__ = [  # ParameterSpec and SettingValue are re-exported: the specs are made of them
    "DEFAULT_STEADY_S", "EMBEDDED", "ClusterSpec", "ConfigError", "ConfirmSpec",
    "ConstraintsSpec", "ConsumerSpec", "FaultSpec", "HandlerSpec", "LocustSpec", "MetricsSpec",
    "NetworkSpec", "ObjectiveSpec", "ParameterSpec", "PayloadsSpec", "ProcessingSpec",
    "ProducerSpec", "SearchSpec", "SecuritySpec", "ServiceSpec", "SettingValue", "ShapeSpec",
    "SizeSpec", "StudyMetaSpec", "StudySpec", "TopicSpec", "TrialSpec", "WorkloadSpec",
    "describe_path", "load_config", "parse_config",
]  # fmt: skip
