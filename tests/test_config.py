"""Typed configuration: YAML, dotted overrides, unknown keys and bad values."""

import pytest

from planessl.config import PretrainConfig, config_to_dict, load_config
from planessl.errors import PlaneSSLError


def test_defaults_yaml_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 3.0e-4\ntask:\n  name: lines\n  line_channels: [2ch, 3ch, 4ch]\n")
    cfg = load_config(PretrainConfig, f, ["optim.lr=1e-3", "data.input_views=[2ch,4ch]",
                                          "trainer.devices=2", "augment.flip=false",
                                          "data.image_size=null"])
    assert cfg.optim.lr == pytest.approx(1e-3)          # "1e-3" is a string in YAML 1.1
    assert cfg.task.name == "lines" and cfg.task.line_channels == ["2ch", "3ch", "4ch"]
    assert cfg.data.input_views == ["2ch", "4ch"]
    assert cfg.trainer.devices == "2" and cfg.augment.flip is False
    assert cfg.data.image_size is None
    assert cfg.model.preset == "small"                   # untouched default
    assert config_to_dict(cfg)["optim"]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize("override, words", [
    ("optim.learning_rate=1", ["optim.learning_rate"]),
    ("nosuch=1", ["nosuch"]),
    ("optim.lr=fast", ["optim.lr", "float"]),
    ("trainer.max_steps=2.5", ["trainer.max_steps", "int"]),
    ("augment.flip=maybe", ["augment.flip"]),
    ("seed", ["key=value"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(PlaneSSLError) as exc:
        load_config(PretrainConfig, overrides=[override])
    for w in words:
        assert w in str(exc.value)


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("model:\n  presett: tiny\n")
    with pytest.raises(PlaneSSLError, match=r"c\.yaml.*model\.presett"):
        load_config(PretrainConfig, f)
