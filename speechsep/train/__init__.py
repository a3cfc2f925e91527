"""Training: the loop (:func:`train`), its typed config, schedules, resumable data order, DDP set-up."""

from speechsep.train.config import TrainConfig, load_train_config
from speechsep.train.engine import StepInfo, TrainResult, train
from speechsep.train.schedule import EpochScheduler, rules_for

__all__ = ["TrainConfig", "load_train_config", "train", "TrainResult", "StepInfo", "EpochScheduler", "rules_for"]
