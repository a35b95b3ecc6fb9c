"""``augment.policy_options`` (the policy's options) and its older name ``augment.selector``: both
work in YAML and in --set, give the same config, and errors name the key the user wrote."""
import pytest
import yaml

from augcore.config import ConfigError
from augcore.train.config import config_from_dict, load_config

OPTIONS = {"method": "lazy", "eps": 0.05}


@pytest.mark.parametrize("key", ["policy_options", "selector"])
def test_both_names_work_in_a_file_and_in_set(tmp_path, key):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"augment": {"mode": "coreset", key: OPTIONS}}))
    from_file = load_config(str(path))
    from_set = load_config(None, ["augment.mode=coreset", f"augment.{key}.method=lazy", f"augment.{key}.eps=0.05"])
    for cfg in (from_file, from_set):
        assert cfg.augment.policy_options == OPTIONS and cfg.augment.selector == OPTIONS
        assert "selector" not in cfg.to_dict()["augment"]           # written back under the current name
        assert cfg.to_dict()["augment"]["policy_options"] == OPTIONS
    assert config_from_dict(from_file.to_dict()) == from_file


def test_a_file_with_the_new_name_takes_an_old_name_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"augment": {"mode": "coreset", "policy_options": {"method": "lazy"}}}))
    cfg = load_config(str(path), ["augment.selector.eps=0.05"])
    assert cfg.augment.policy_options == OPTIONS
    with pytest.raises(ConfigError, match=r"augment\.selector\.method: given as 'naive' and as "
                                          r"augment\.policy_options\.method='lazy'"):
        load_config(str(path), ["augment.selector.method=naive"])


@pytest.mark.parametrize("key", ["policy_options", "selector"])
def test_errors_name_the_key_as_written(key):
    with pytest.raises(ConfigError, match=rf"augment\.{key}\.epsilon"):
        load_config(None, ["augment.mode=coreset", f"augment.{key}.epsilon=0.1"])
    with pytest.raises(ConfigError, match=rf"augment\.{key}\.eps"):
        load_config(None, ["augment.mode=coreset", f"augment.{key}.eps=2"])
