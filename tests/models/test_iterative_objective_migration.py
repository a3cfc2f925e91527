"""Issue 18.5: the training objective left the iterative model's config for the training config.

Checkpoints written before still load, and the bundled iterative model's output did not move by a bit.
"""

import hashlib

import pytest
import torch

from speechsep.checkpoint import load_model, read_checkpoint
from speechsep.inference.pretrained import bundled_models

#: recorded BEFORE the objective moved (commit a855db4, torch.set_num_threads(1), this repository's CPU
#: build of torch): the bundled iterative-freq model on 1 s of seeded noise (randn(1, 8000) * 0.1,
#: generator seed 1234). sha256 of the float32 output bytes, its float32 sum, and eight samples (hex).
BUNDLED_SHA256 = "b5adcc893349d46b611ac1400937cc5c11280155ed38c74e09146fcfc4c5ce5e"
BUNDLED_SUM = -0.23306851089000702
BUNDLED_SAMPLES = {
    (0, 1000): "0x1.4ae5400000000p-7", (0, 2500): "0x1.ccabb20000000p-5",
    (0, 4000): "0x1.2b75780000000p-6", (0, 7000): "-0x1.e7a4c60000000p-8",
    (1, 1000): "0x1.6f2a660000000p-5", (1, 2500): "0x1.ddd5ba0000000p-5",
    (1, 4000): "0x1.49ea800000000p-5", (1, 7000): "-0x1.60cd6a0000000p-6",
}


@pytest.fixture
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bundled_iterative_model_output_is_bit_identical(_one_thread):
    path = bundled_models()["iterative-freq"]
    model = load_model(path)
    x = torch.randn(1, 8000, generator=torch.Generator().manual_seed(1234)) * 0.1
    with torch.no_grad():
        y = model(x)
    assert isinstance(y, torch.Tensor) and y.shape == (1, 2, 8000)
    assert {k: float(y[0, k[0], k[1]]).hex() for k in BUNDLED_SAMPLES} == BUNDLED_SAMPLES
    assert float(y.sum()) == BUNDLED_SUM
    assert hashlib.sha256(y.contiguous().numpy().tobytes()).hexdigest() == BUNDLED_SHA256


def test_bundled_checkpoint_still_holds_the_old_keys_and_loads_without_them():
    path = bundled_models()["iterative-freq"]
    stored = read_checkpoint(path)["config"]
    assert {"layerwise", "oracle_bias", "objective"} <= set(stored)  # written before the move
    model = load_model(path)
    assert not hasattr(model.config, "layerwise") and not hasattr(model.config, "objective")


def test_old_model_config_keys_are_dropped_on_load_and_change_no_output():
    from speechsep.config import to_dict
    from speechsep.registry import build, build_from_config

    model = build("iterative", sample_rate=8000, encoder={"num_filters": 16},
                  dprnn={"bottleneck": 8, "hidden": 8, "segment_size": 10}, iterations=2).eval()
    old = {**to_dict(model.config), "layerwise": True, "oracle_bias": True,
           "objective": {"iterations": "last", "layers": "all", "normalize": False, "oracle_weight": 0.5}}
    again = build_from_config("iterative", old)
    again.load_state_dict(model.state_dict())
    x = torch.randn(1, 800, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(x), model(x), rtol=0, atol=0)
    assert again.config == model.config


def test_building_with_an_old_objective_key_says_where_it_went():
    from speechsep.config import ConfigError
    from speechsep.registry import build

    with pytest.raises(ConfigError, match="loss"):
        build("iter-freq-simo1-siso2-it1", layerwise=True)


@pytest.mark.parametrize(
    ("legacy", "moved"),
    [
        ({"layerwise": True}, {"layers": "all"}),
        ({"layerwise": False}, {"layers": "last"}),
        ({"layerwise": True, "objective": {"layers": "last"}}, {"layers": "last"}),
        ({"objective": {"layers": "all"}}, {}),
        ({"objective": {"layers": "last", "iterations": "last"}}, {"layers": "last", "iterations": "last"}),
        ({"oracle_bias": True, "objective": {"oracle_weight": 0.5, "normalize": False}},
         {"oracle_bias": True, "oracle_weight": 0.5, "normalize": False}),
    ],
)
def test_the_migration_rule(legacy, moved):
    from speechsep.losses.objectives import migrate_model_objective

    assert migrate_model_objective(legacy) == moved


def test_a_recipe_with_the_objective_in_model_overrides_trains_the_same_objective(tmp_path):
    import yaml

    from speechsep.config import ConfigError
    from speechsep.registry import get_preset
    from speechsep.train.config import load_train_config

    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": "iter-time-simo1-siso2-it2-detach",
                                              "overrides": {"sample_rate": 8000, "layerwise": True,
                                                            "oracle_bias": True}}}))
    cfg = load_train_config(path)
    assert cfg.model.overrides == {"sample_rate": 8000}
    objective = cfg.loss.objective(get_preset(cfg.model.name).objective)
    assert (objective.layers, objective.oracle_bias, objective.iterations) == ("all", True, "all")
    # the same through a command-line override of the old key
    cfg = load_train_config(tmp_path / "old.yaml", ["model.overrides.layerwise=false"])
    assert cfg.loss.layers == "last" and "layerwise" not in cfg.model.overrides
    # a command-line loss field wins over the file's old key; the file saying both ways is an error
    assert load_train_config(path, ["loss.layers=last"]).loss.layers == "last"
    both = tmp_path / "both.yaml"
    both.write_text(yaml.safe_dump({"model": {"name": "iter-time-simo1-siso2-it2-detach",
                                              "overrides": {"layerwise": True}}, "loss": {"layers": "last"}}))
    with pytest.raises(ConfigError, match="disagree"):
        load_train_config(both)


def test_presets_and_shipped_recipes_train_the_objective_the_old_model_config_held():
    from speechsep.registry import get_preset, list_presets
    from speechsep.train.config import load_train_config
    from speechsep.train.recipes import list_recipes, resolve_recipe

    presets = [p for p in list_presets() if p.family == "iterative" and p.name.startswith("iter-")]
    assert presets
    for preset in presets:
        objective = preset.objective
        # before: model config layerwise = "-layerwise" in the name, oracle_bias = "-oracle" in it,
        # objective = defaults (every iteration, normalised, oracle weight 1)
        assert objective["layers"] == ("all" if "-layerwise" in preset.name else "last"), preset.name
        assert objective["oracle_bias"] == ("-oracle" in preset.name), preset.name
        assert objective["iterations"] == "all" and objective["normalize"] is True
    for name in list_recipes():
        cfg = load_train_config(resolve_recipe(name))
        if not cfg.model.name.startswith("iter-"):
            continue
        got = cfg.loss.objective(get_preset(cfg.model.name).objective)
        assert got.layers == ("all" if "-layerwise" in cfg.model.name else "last"), name
        assert got.oracle_bias == ("-oracle" in cfg.model.name), name
        assert (got.iterations, got.normalize, got.oracle_weight, got.iteration_weights) == ("all", True, 1.0, None)


def test_the_grid_states_each_rows_objective():
    from speechsep.experiments.iterative_grid import GridSettings, _train_config, plan

    for job in plan((1, 2, 3, 4), "tiny"):
        cfg = _train_config(job, GridSettings(scale="tiny"), "demo:/c:train", "demo:/c:valid")
        assert cfg.loss.layers == ("all" if job.row.layerwise else "last")
        assert cfg.loss.oracle_bias == job.row.oracle_bias
