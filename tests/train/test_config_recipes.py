import pytest
import yaml

from speechsep.config import ConfigError
from speechsep.train.config import TrainConfig, load_train_config
from speechsep.train.recipes import (
    CORPORA,
    RECIPE_DIR,
    list_recipes,
    recipe_models,
    render_recipe,
    resolve_recipe,
)


def test_every_shipped_recipe_loads_and_states_its_target():
    names = list_recipes()
    # bundled/ holds the recipes of the bundled models (written by hand, not by the generator)
    generated = [n for n in names if n.split("/")[0] in {c.name for c in CORPORA}]
    assert len(generated) == len(CORPORA) * len(recipe_models())
    for name in names:
        cfg = load_train_config(resolve_recipe(name))
        assert isinstance(cfg, TrainConfig) and cfg.data.target in ("reverberant", "dry"), name
    for name in generated:
        path = resolve_recipe(name)
        cfg = load_train_config(path)
        assert f"Target: {cfg.data.target}" in path.read_text().splitlines()[1]
        assert cfg.schedule.kind == ("iterative" if cfg.model.name.startswith("iter-") else "tfacm")


def test_shipped_recipes_match_the_generator():
    for corpus in CORPORA:
        for model in recipe_models():
            assert (RECIPE_DIR / corpus.name / f"{model}.yaml").read_text() == render_recipe(model, corpus)


def test_overrides_including_model_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"model": {"name": "skim", "overrides": {"num_sources": 2}}, "max_epochs": 3}))
    cfg = load_train_config(path, ["optim.lr=5e-4", "model.overrides.sample_rate=16000", "schedule.kind=tfacm"])
    assert cfg.optim.lr == 5e-4 and cfg.schedule.kind == "tfacm" and cfg.max_epochs == 3
    assert cfg.model.overrides == {"num_sources": 2, "sample_rate": 16000}
    with pytest.raises(ConfigError, match="lrr"):
        load_train_config(path, ["optim.lrr=1"])
    path.write_text(yaml.safe_dump({"optim": {"lr": 1e-3, "momentum": 0.9}}))
    with pytest.raises(ConfigError, match="momentum"):
        load_train_config(path)


def test_recipe_keys_for_warmup_cosine_and_the_clean_first_curriculum(tmp_path):
    from speechsep.data.spec import open_dataset
    from speechsep.train.config import DataConfig

    path = tmp_path / "r.yaml"
    path.write_text("schedule:\n  kind: warmup_cosine\n  warmup_steps: 500\n  total_steps: 20000\n"
                    "  final_lr_ratio: 5e-2\ndata:\n  clean_first_epochs: 3\n")
    cfg = load_train_config(path)
    assert (cfg.schedule.kind, cfg.schedule.warmup_steps, cfg.schedule.total_steps) == ("warmup_cosine", 500, 20000)
    assert cfg.schedule.final_lr_ratio == 0.05 and cfg.data.clean_first_epochs == 3
    with pytest.raises(ValueError, match="total_steps must be an integer > warmup_steps"):
        load_train_config(path, ["schedule.total_steps=500"])
    with pytest.raises(ValueError, match="clean_first_epochs must be an integer >= 0"):
        DataConfig(clean_first_epochs=-1)
    # a fixed (file) set cannot follow a curriculum; refused before any file is read
    with pytest.raises(ValueError, match="clean_first_epochs applies only to dynamic mixing"):
        open_dataset("wham:/nowhere:tr", sample_rate=8000, train=True, clean_first_epochs=2)


def test_recipe_key_for_the_deep_clustering_term(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model:\n  name: tf-mask-blstm\n  overrides:\n    embedding_dim: 20\n")
    cfg = load_train_config(path, ["loss.deep_clustering_weight=10"])
    assert cfg.loss.objective().deep_clustering_weight == 10.0
    assert load_train_config(path).loss.objective().deep_clustering_weight == 0.0  # off unless asked for
    with pytest.raises(ValueError, match="deep_clustering_weight must be >= 0"):
        load_train_config(path, ["loss.deep_clustering_weight=-1"])
