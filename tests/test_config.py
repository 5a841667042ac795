import json

import pytest

from aekit.config import (ModelConfig, OptimConfig, RunConfig, ScheduleConfig, TrainConfig,
                          load_config_file)
from aekit.errors import ConfigError


def test_round_trip_through_json_is_exact():
    cfg = RunConfig().replace(hidden=(30, 20), latent_dim=5, optimizer="nesterov", l2=1e-4,
                              schedule="cosine_restarts", clip_norm=1.0, batch_norm=True)
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


def test_flat_and_sectioned_configs_are_the_same():
    flat = RunConfig.from_dict({"latent_dim": 7, "lr": 0.01})
    sectioned = RunConfig.from_dict({"model": {"latent_dim": 7}, "optim": {"lr": 0.01}})
    assert flat == sectioned


@pytest.mark.parametrize("make,match", [
    (lambda: ModelConfig(latent_dim=0), r"`latent_dim` must be >= 1. Received: latent_dim=0"),
    (lambda: ModelConfig(activation="swish"), r"`activation` must be one of relu, .*swish"),
    (lambda: ModelConfig(hidden="10,x"), r"comma-separated positive integers.*10,x"),
    (lambda: ModelConfig(hidden=(10, -1)), r"positive integers.*-1"),
    (lambda: OptimConfig(lr=0), r"`lr` must be > 0. Received: lr=0"),
    (lambda: OptimConfig(optimizer="rmsprop"), r"one of gd, sgd, momentum, nesterov, adam"),
    (lambda: ScheduleConfig(schedule="poly"), r"`schedule` must be one of constant"),
    (lambda: TrainConfig(batch_size=0), r"`batch_size` must be >= 1"),
    (lambda: TrainConfig(validation_split=1.5), r"`validation_split` must be >= 0 and <= 0.9"),
    (lambda: TrainConfig(epochs=2.5), r"`epochs` must be an integer or None"),
    (lambda: TrainConfig(clip_norm=float("nan")), r"`clip_norm` must be a number"),
])
def test_bad_values_are_refused_with_an_echo(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_unknown_option_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"Unknown option `latent`. Allowed options: .*latent_dim"):
        RunConfig.from_dict({"latent": 3})


def test_option_in_the_wrong_section_is_refused():
    with pytest.raises(ConfigError, match=r"`lr` belongs in section `optim`, not `model`"):
        RunConfig.from_dict({"model": {"lr": 0.1}})


def test_config_files_json_and_toml(tmp_path):
    (tmp_path / "a.json").write_text('{"latent_dim": 4, "hidden": [8, 6]}')
    (tmp_path / "b.toml").write_text('[model]\nlatent_dim = 4\nhidden = [8, 6]\n')
    assert load_config_file(tmp_path / "a.json") == {"latent_dim": 4, "hidden": [8, 6]}
    assert RunConfig.from_dict(load_config_file(tmp_path / "b.toml")).model.hidden == (8, 6)
    (tmp_path / "c.toml").write_text("latent_dim = [")
    with pytest.raises(ConfigError, match=r"c.toml could not be parsed"):
        load_config_file(tmp_path / "c.toml")
    with pytest.raises(ConfigError, match=r"must end in .json or .toml"):
        (tmp_path / "d.yaml").write_text("x: 1")
        load_config_file(tmp_path / "d.yaml")


def test_auto_epochs_aims_at_a_number_of_steps():
    from aekit.training.plan import auto_epochs

    assert auto_epochs(211) == 19  # Fashion-MNIST at batch 256
    assert auto_epochs(7) == 572  # digits at batch 256
    assert auto_epochs(100000) == 10
    assert auto_epochs(1) == 1000


def test_decoder_mirrors_encoder_unless_given():
    assert ModelConfig(hidden=(5, 3)).decoder_widths == (3, 5)
    assert ModelConfig(hidden=(5, 3), decoder_hidden=(4,)).decoder_widths == (4,)
