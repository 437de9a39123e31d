"""Configs round-trip through JSON."""

import json

import pytest
from testing_configs import gaussian_config

from gan_jax import config as config_lib


def test_config_round_trips_through_json():
    config = gaussian_config()
    restored = config_lib.from_dict(
        config_lib.Config, json.loads(json.dumps(config_lib.to_dict(config)))
    )
    assert config_lib.to_dict(restored) == config_lib.to_dict(config)
    assert restored.loss == config.loss
    assert restored.data.kwargs == config.data.kwargs


def test_replace_with_dotted_names():
    config = config_lib.replace(gaussian_config(), **{"loss.reduction": "mean", "batch_size": 4})
    assert config.loss.reduction == "mean"
    assert config.loss.d_loss_weight == 0.5
    assert config.batch_size == 4


def test_unknown_fields_are_rejected():
    values = config_lib.to_dict(gaussian_config())
    values["learning_rate"] = 1.0
    with pytest.raises(ValueError, match="learning_rate"):
        config_lib.from_dict(config_lib.Config, values)
