import pytest

from edge_node.config import load_settings
from edge_node.errors import ConfigError


def test_defaults_then_environment_then_flags():
    assert load_settings({}).port == 8080
    assert load_settings({"EDGE_PORT": "9000"}).port == 9000
    assert load_settings({"EDGE_PORT": "9000"}, {"port": "9100"}).port == 9100
    assert load_settings({"EDGE_FAST_MAX_WAIT_MS": "0.5"}).fast_max_wait_ms == 0.5


def test_a_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="EDGE_INFERENCE_WORKERS"):
        load_settings({"EDGE_INFERENCE_WORKERS": "many"})
    with pytest.raises(ConfigError, match="port must be"):
        load_settings({"EDGE_PORT": "70000"})


def test_a_switch_given_a_word_it_does_not_take_says_which_it_takes():
    with pytest.raises(ConfigError, match=r"Expected true or false \(or 1 / 0\) - at EDGE_DEEP_STAGE / --deep-stage"):
        load_settings({"EDGE_DEEP_STAGE": "maybe"})
    assert load_settings({"EDGE_DEEP_STAGE": "1"}).deep_stage
    assert not load_settings({"EDGE_DEEP_STAGE": "false"}).deep_stage
