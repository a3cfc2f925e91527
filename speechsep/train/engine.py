"""The training loop: one readable function, resumable bit for bit, single process or DDP.

Per step: the model's estimates (``model.training_outputs(mix, targets, objective)``: for most models
the forward output, for the iterative model its per-iteration / per-layer outputs), weighted by the
recipe's objective (``loss:``, :func:`speechsep.losses.objectives.assemble_terms`), each scored by
the configured criterion under utterance-level PIT and summed (``weighted_pit_loss``), plus the weighted
deep-clustering term of a model with an embedding head (``loss.deep_clustering_weight``); Adam; gradient-norm
clip at 5 (both papers). Per epoch: validation SI-SDR (PIT), the schedule, ``last.pt`` and, on a new
best, ``best.pt``. Rerunning on the same folder resumes from ``last.pt``.

Why a resumed run equals an uninterrupted one on CPU: the data order and crops are functions of
(seed, epoch, index) (:mod:`speechsep.train.data`); the checkpoint holds the weights, Adam's moments,
the schedule, the step and the position inside the epoch, and the global RNG states as of the last
finished step (so dropout or any other draw in the model continues the same stream).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from speechsep.checkpoint import CheckpointError, read_checkpoint, rng_state, save_checkpoint, set_rng_state
from speechsep.config import ConfigError, from_dict, save_yaml, to_dict
from speechsep.losses import (
    PAIRWISE_LOSSES,
    PITLoss,
    neg_si_sdr,
    neg_snr,
    pairwise_neg_si_sdr,
    pit_from_pairwise,
    si_sdr,
)
from speechsep.losses.objectives import ObjectiveConfig, assemble_terms, weighted_pit_loss
from speechsep.models.base import SeparationModel, TrainingOutput
from speechsep.precision import autocast
from speechsep.train.config import TrainConfig
from speechsep.train.data import CroppedExamples, EpochSampler, make_loader, open_examples
from speechsep.train.distributed import DistInfo, all_reduce_sum, barrier, setup, teardown
from speechsep.train.optim import make_optimizer
from speechsep.train.runlog import RunLog
from speechsep.train.schedule import make_scheduler
from speechsep.utils import expand_path

__all__ = ["train", "TrainResult", "StepInfo", "ModelWithLoss", "evaluate_si_sdr", "training_device"]

log = logging.getLogger(__name__)

_ELEMENTWISE = {"neg_snr": neg_snr, "neg_si_sdr": neg_si_sdr}


@dataclasses.dataclass(frozen=True)
class TrainResult:
    out_dir: Path
    epoch: int  # epochs completed
    step: int
    best_si_sdr: float
    #: "max_epochs", "early_stop" or "max_steps"
    stopped: str


@dataclasses.dataclass(frozen=True)
class StepInfo:
    """Passed to step hooks after every optimiser step."""

    step: int
    epoch: int
    batch_in_epoch: int
    loss: float


class ModelWithLoss(nn.Module):
    """Model plus objective: ``forward(mix (B, T), ref (B, C, T)) -> loss (B,)``.

    The model hands over its estimates (``training_outputs``, those ``objective`` asks for), the
    objective weights them (``assemble_terms``) and ``weighted_pit_loss`` sums their criterion under
    PIT: the one place the training loss is summed. This, not the bare model, is what DDP wraps, so
    gradient synchronisation also covers every output of ``training_outputs``.
    """

    def __init__(self, model: SeparationModel, loss_name: str, pit: bool, objective: ObjectiveConfig | None = None):
        super().__init__()
        self.model = model
        self.pit = PITLoss(PAIRWISE_LOSSES[loss_name]) if pit else None
        self.elementwise = _ELEMENTWISE[loss_name]
        self.objective = objective or ObjectiveConfig()

    def terms(self, mix: torch.Tensor, ref: torch.Tensor) -> list[tuple[torch.Tensor, float]]:
        """The weighted estimates: ``[(estimate (B, C, T), weight), ...]``."""
        outputs = self.model.training_outputs(mix, ref, self.objective)
        return [(est, weight) for est, weight, _ in assemble_terms(outputs, self.objective)]

    def _deep_clustering(self, outputs: list[TrainingOutput]) -> torch.Tensor:
        """The weighted deep-clustering term ``(B,)`` the outputs carry (Chimera++, ``loss.deep_clustering_weight``)."""
        terms = [o.deep_clustering for o in outputs if o.deep_clustering is not None]
        if not terms:
            raise ValueError(
                f"loss.deep_clustering_weight is {self.objective.deep_clustering_weight} but the {self.model.family} "
                "model returned no deep-clustering term: it needs an embedding head (tf-mask: "
                "model.overrides.embedding_dim > 0)"
            )
        return self.objective.deep_clustering_weight * torch.stack(terms).sum(0).float()

    def _score(self, est: torch.Tensor, ref: torch.Tensor) -> tuple[torch.Tensor, None]:
        if est.shape != ref.shape:
            raise ValueError(f"model output {tuple(est.shape)} does not match the targets {tuple(ref.shape)}")
        # Under bf16 autocast (GPU) the estimates may be bf16, and autocast would also run the
        # loss's products in bf16; energies, ratios and logs want float32, so leave it here.
        with torch.autocast(est.device.type, enabled=False):
            est = est.float()
            loss = self.pit(est, ref)[0] if self.pit is not None else self.elementwise(est, ref).mean(dim=1)
        return loss, None

    def forward(self, mix: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        outputs = self.model.training_outputs(mix, ref, self.objective)
        loss = weighted_pit_loss(assemble_terms(outputs, self.objective), ref, pit=self._score)[0]
        if self.objective.deep_clustering_weight > 0:
            loss = loss + self._deep_clustering(outputs)
        return loss


def training_device(device: str, dist_info: DistInfo | None = None) -> torch.device:
    """:func:`speechsep.inference.pretrained.resolve_device`, except that each process of a multi-GPU
    run takes the GPU of its local rank when the device names CUDA without an index."""
    from speechsep.inference.pretrained import resolve_device

    resolved = resolve_device(device)
    if resolved.type == "cuda" and dist_info is not None and ":" not in str(device):
        return torch.device("cuda", dist_info.local_rank)
    return resolved


@torch.no_grad()
def evaluate_si_sdr(model: SeparationModel, loader: DataLoader, device: torch.device, dist_info: DistInfo,
                    precision: str = "auto") -> dict[str, float]:
    """Mean SI-SDR and SI-SDRi (dB) over ``loader`` (the validation set, during training), estimates
    aligned by SI-SDR PIT."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # si_sdr, si_sdri, count
    for mix, ref in loader:
        mix, ref = mix.to(device, non_blocking=True), ref.to(device, non_blocking=True)
        with autocast(device, precision):
            est = model(mix)
        neg, _ = pit_from_pairwise(pairwise_neg_si_sdr(est.float(), ref))
        baseline = si_sdr(mix.unsqueeze(1).expand_as(ref), ref).mean(dim=1)
        sums += torch.stack([(-neg).sum().double(), (-neg - baseline).sum().double(),
                             torch.tensor(float(mix.shape[0]), dtype=torch.float64, device=device)])
    model.train(was_training)
    all_reduce_sum(sums, dist_info)
    count = float(sums[2])
    if count == 0:
        raise ValueError("the validation set is empty")
    return {"si_sdr": float(sums[0]) / count, "si_sdri": float(sums[1]) / count, "n": int(count)}


def _steps_in_epoch(num_examples: int, config: TrainConfig, dist_info: DistInfo) -> int:
    per_rank = num_examples // dist_info.world
    steps = per_rank // config.data.batch_size
    if steps == 0:
        raise ValueError(
            f"{num_examples} training examples give no full batch of {config.data.batch_size} per process "
            f"({dist_info.world} processes)"
        )
    return min(steps, config.steps_per_epoch) if config.steps_per_epoch else steps


class _Interrupted(Exception):
    pass


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    device: str = "auto",
    train_data: Dataset | None = None,
    valid_data: Dataset | None = None,
    hooks: Sequence[Callable[[StepInfo], None]] = (),
    progress: bool = True,
) -> TrainResult:
    """Train (or resume, when ``out_dir/last.pt`` exists) and return where the run ended.

    ``train_data``/``valid_data`` replace ``config.data.train``/``valid`` specs: any Dataset of
    ``(mixture (T,), sources (C, T))`` items. Under torchrun each process calls this; only rank 0
    writes files. ``hooks`` run after every optimiser step (tests use them to interrupt a run).
    """
    out_dir = Path(out_dir)
    wants_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    dist_info = setup(wants_cuda)
    try:
        return _train(config, out_dir, training_device(device, dist_info), dist_info, train_data, valid_data,
                      hooks, progress)
    finally:
        teardown(dist_info)


def _train(
    config: TrainConfig,
    out_dir: Path,
    device: torch.device,
    dist_info: DistInfo,
    train_data: Dataset | None,
    valid_data: Dataset | None,
    hooks: Sequence[Callable[[StepInfo], None]],
    progress: bool,
) -> TrainResult:
    from speechsep.registry import build

    main = dist_info.is_main
    torch.manual_seed(config.seed)
    model = build(config.model.name, **config.model.overrides).to(device)
    sr = model.sample_rate

    train_set = CroppedExamples(
        open_examples(train_data if train_data is not None else config.data.train, sample_rate=sr, train=True,
                      seed=config.seed, mixing=config.data.mixing,
                      clean_first_epochs=config.data.clean_first_epochs),
        round(config.data.segment_seconds * sr), config.seed,
    )
    valid_len = config.data.valid_segment_seconds
    valid_base = open_examples(valid_data if valid_data is not None else config.data.valid, sample_rate=sr,
                               train=False, seed=config.seed)
    if config.data.valid_max_examples is not None:
        valid_base = torch.utils.data.Subset(valid_base, range(min(config.data.valid_max_examples, len(valid_base))))
    valid_set = CroppedExamples(valid_base, None if valid_len is None else round(valid_len * sr), config.seed)
    valid_loader = make_loader(
        valid_set,
        EpochSampler(len(valid_set), seed=config.seed, epoch=0, shuffle=False, rank=dist_info.rank,
                     world=dist_info.world, even=False),
        batch_size=1 if valid_len is None else config.data.batch_size,  # whole utterances differ in length
        num_workers=config.data.num_workers,
        drop_last=False,
    )
    steps_per_epoch = _steps_in_epoch(len(train_set), config, dist_info)

    optimizer = make_optimizer(model.parameters(), config.optim)
    scheduler = make_scheduler(optimizer, config.schedule, run_steps=config.max_epochs * steps_per_epoch)
    epoch, batch_in_epoch, step = 0, 0, 0

    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    runlog = RunLog(out_dir, enabled=main, tensorboard=config.tensorboard)
    if _resuming(last_path, device, dist_info):
        payload = read_checkpoint(last_path, map_location="cpu")
        changes = _config_changes(payload.get("extra", {}).get("train_config"), config)
        model.load_state_dict(payload["state_dict"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        epoch, step = int(payload["epoch"]), int(payload["step"])
        batch_in_epoch = int(payload["extra"]["batch_in_epoch"])
        set_rng_state(payload["rng"])
        runlog.resume(step)
        if payload["extra"].get("early_stopped") or epoch >= config.max_epochs:
            reason = "early_stop" if payload["extra"].get("early_stopped") else "max_epochs"
            log.info("%s: already finished (%s)", out_dir, reason)
            return TrainResult(out_dir, epoch, step, scheduler.best, reason)
        if main:
            log.info("resuming %s at epoch %d, batch %d, step %d", out_dir, epoch, batch_in_epoch, step)
        runlog.write({"kind": "event", "event": "resume", "step": step, "epoch": epoch, "device": str(device),
                      **({"config_changes": changes} if changes else {})})
    else:
        if config.init_from:
            _warm_start(model, expand_path(config.init_from))
        if main:
            out_dir.mkdir(parents=True, exist_ok=True)
            save_yaml(config, out_dir / "config.yaml")
            runlog.resume(0)  # a run killed before its first checkpoint starts over: drop its records
            # run_id: a model card counts each run once, however often the run is bundled
            runlog.write({"kind": "event", "event": "start", "step": 0, "epoch": 0, "world": dist_info.world,
                          "device": str(device), "model": config.model.name, "init_from": config.init_from,
                          "run_id": uuid.uuid4().hex[:16]})

    # the recipe's loss: fields, else the preset's objective (a layer-wise or oracle-bias preset)
    from speechsep.registry import get_preset

    objective_config = config.loss.objective(get_preset(config.model.name).objective)
    if main:
        log.info("training objective: %s", to_dict(objective_config))
    objective: nn.Module = ModelWithLoss(model, config.loss.name, config.loss.pit, objective_config)
    if dist_info.enabled:
        objective = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None
        )

    def checkpoint(path: Path, *, rng: dict[str, Any] | None = None, early_stopped: bool = False) -> None:
        if not main:
            return
        saved = rng_state()
        if rng is not None:
            set_rng_state(rng)  # the state as of the last finished step, not mid-step
        try:
            save_checkpoint(path, model, optimizer=optimizer, scheduler=scheduler, step=step, epoch=epoch,
                            extra={"train_config": to_dict(config), "batch_in_epoch": batch_in_epoch,
                                   "best_si_sdr": scheduler.best, "world": dist_info.world,
                                   "early_stopped": early_stopped})
        finally:
            set_rng_state(saved)

    stopped = "max_epochs"
    model.train()
    previous_sigterm = _sigterm_as_interrupt()
    try:
        while epoch < config.max_epochs:
            sampler = EpochSampler(len(train_set), seed=config.seed, epoch=epoch, rank=dist_info.rank,
                                   world=dist_info.world, start=batch_in_epoch * config.data.batch_size)
            loader = make_loader(train_set, sampler, config.data.batch_size, config.data.num_workers)
            bar = _progress_bar(main and progress, steps_per_epoch, batch_in_epoch, epoch)
            window = {"loss": 0.0, "n": 0, "wait": 0.0, "busy": 0.0}
            after_step_rng = rng_state()
            batches = iter(loader)
            try:
                while batch_in_epoch < steps_per_epoch:
                    t0 = time.perf_counter()
                    mix, ref = next(batches)
                    mix, ref = mix.to(device, non_blocking=True), ref.to(device, non_blocking=True)
                    t1 = time.perf_counter()
                    scheduler.at_step(step)  # per-step schedules (warmup_cosine) set this update's LR
                    with autocast(device, config.precision):
                        loss = objective(mix, ref).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.clip)
                    if torch.isfinite(grad_norm):
                        optimizer.step()
                    else:
                        log.warning("step %d: non-finite gradient norm; update skipped", step + 1)
                    loss_value = float(loss.detach())
                    t2 = time.perf_counter()
                    step += 1
                    batch_in_epoch += 1
                    after_step_rng = rng_state()
                    window["loss"] += loss_value
                    window["n"] += 1
                    window["wait"] += t1 - t0
                    window["busy"] += t2 - t1
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{scheduler.lr:.2e}")
                    if step % config.log_every == 0:
                        runlog.write(_train_record(step, epoch, window, scheduler.lr, float(grad_norm)))
                        window = {"loss": 0.0, "n": 0, "wait": 0.0, "busy": 0.0}
                    if config.checkpoint_every and step % config.checkpoint_every == 0:
                        checkpoint(last_path)
                    for hook in hooks:
                        hook(StepInfo(step, epoch, batch_in_epoch, loss_value))
                    if config.max_steps is not None and step >= config.max_steps:
                        raise _Interrupted("max_steps")
            except (KeyboardInterrupt, _Interrupted) as stop:
                # Save the position after the last finished step, so rerunning resumes exactly there.
                reason = "max_steps" if isinstance(stop, _Interrupted) else "interrupted"
                if batch_in_epoch < steps_per_epoch or reason == "interrupted":
                    checkpoint(last_path, rng=after_step_rng)
                    runlog.write({"kind": "event", "event": reason, "step": step, "epoch": epoch})
                    if reason == "interrupted":
                        raise
                    stopped = reason
                    break
            finally:
                if bar is not None:
                    bar.close()
                del batches
            if window["n"]:
                runlog.write(_train_record(step, epoch, window, scheduler.lr, None))

            metrics = evaluate_si_sdr(model, valid_loader, device, dist_info, config.precision)
            should_stop = scheduler.step(metrics["si_sdr"])
            epoch, batch_in_epoch = epoch + 1, 0
            runlog.write({"kind": "valid", "step": step, "epoch": epoch, **metrics, "lr": scheduler.lr,
                          "best": scheduler.is_best()})
            if main:
                log.info("epoch %d: valid SI-SDR %.2f dB (SI-SDRi %.2f)%s", epoch, metrics["si_sdr"],
                         metrics["si_sdri"], " new best" if scheduler.is_best() else "")
            hit_max_steps = config.max_steps is not None and step >= config.max_steps
            if should_stop:
                stopped = "early_stop"
            elif hit_max_steps and epoch < config.max_epochs:
                stopped = "max_steps"
            if scheduler.is_best():
                checkpoint(best_path, early_stopped=should_stop)
            checkpoint(last_path, early_stopped=should_stop)
            runlog.plot(force=False)
            if should_stop or hit_max_steps:
                break
        barrier(dist_info)
        runlog.write({"kind": "event", "event": "stop", "reason": stopped, "step": step, "epoch": epoch})
        runlog.plot()
        return TrainResult(out_dir, epoch, step, scheduler.best, stopped)
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        runlog.close()


def _warm_start(model: SeparationModel, source: Path) -> None:
    """Load ``source``'s weights into the freshly built ``model``; they must be of the same config."""
    payload = read_checkpoint(source, map_location="cpu")
    if payload["family"] != model.family:
        raise CheckpointError(f"{source}: init_from holds a {payload['family']} model, the recipe builds {model.family}")
    try:
        missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
    except RuntimeError as err:
        raise CheckpointError(f"{source}: init_from weights do not fit the recipe's model config: {err}") from err
    # An auxiliary training-only head (e.g. Chimera++'s embedding head) may be new to the source weights.
    fresh = [k for k in missing if k.split(".")[0] in model.training_only_modules]
    absent = sorted(set(missing) - set(fresh))
    if absent or unexpected:
        raise CheckpointError(
            f"{source}: init_from weights do not fit the recipe's model config: missing {absent}, "
            f"unexpected {sorted(unexpected)}"
        )
    log.info("initialised from %s (step %s of its run)%s", source, payload.get("step"),
             f"; new training-only weights: {', '.join(fresh)}" if fresh else "")


def _resuming(last_path: Path, device: torch.device, dist_info: DistInfo) -> bool:
    """Whether ``last_path`` exists, checked to be the same answer in every process.

    Every process reads the checkpoint itself, so RUN must be on storage all nodes see; a node
    that does not see it would start from scratch while the others resume, and the processes
    would wait on each other forever a few steps later. Fail now, saying why.
    """
    exists = last_path.exists()
    if dist_info.enabled:
        seen = all_reduce_sum(torch.tensor([float(exists)], device=device), dist_info)
        if 0 < float(seen) < dist_info.world:
            raise RuntimeError(
                f"{last_path} is visible to {int(float(seen))} of {dist_info.world} processes: put the run folder "
                "on storage that every node sees (a shared file system)"
            )
    return exists


def _train_record(step: int, epoch: int, window: dict[str, float], lr: float, grad_norm: float | None) -> dict[str, Any]:
    total = window["wait"] + window["busy"]
    return {
        "kind": "train",
        "step": step,
        "epoch": epoch,
        "loss": window["loss"] / max(window["n"], 1),
        "lr": lr,
        "grad_norm": grad_norm,
        "step_seconds": total / max(window["n"], 1),
        "data_wait_fraction": window["wait"] / total if total > 0 else 0.0,
    }


def _progress_bar(enabled: bool, total: int, initial: int, epoch: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # tqdm shows the rate (it/s) and the ETA of the epoch; the loss goes in the postfix.
    return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}", unit="step", dynamic_ncols=True, leave=False)


def _sigterm_as_interrupt():
    """torchrun and schedulers stop a job with SIGTERM: treat it like Ctrl-C, so last.pt is saved."""

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


_RESUMABLE_CHANGES = {"max_epochs", "max_steps", "log_every", "tensorboard", "checkpoint_every", "description"}


def _config_changes(saved: dict[str, Any] | None, config: TrainConfig) -> dict[str, Any]:
    """The top-level recipe fields a resume changes, with their new values (warned about when they
    change the arithmetic). The resume event in ``log.jsonl`` keeps them, so a model card can say
    from which step a run continued differently (e.g. ``precision: bf16``)."""
    if saved is None:
        return {}
    current = to_dict(config)
    # a field added after the checkpoint was written counts as its default, not as a change (also one
    # level down, e.g. the loss: objective fields); old objective keys in model.overrides migrate
    defaults = to_dict(TrainConfig())
    saved = {k: {**defaults[k], **v} if isinstance(v, dict) and isinstance(defaults.get(k), dict) and k != "model"
             else v for k, v in saved.items()}
    saved = {**{k: v for k, v in defaults.items() if k not in saved}, **saved}
    try:
        saved = to_dict(from_dict(TrainConfig, saved))
    except (ConfigError, TypeError, ValueError):
        pass
    changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    risky = [k for k in changed if k not in _RESUMABLE_CHANGES and not (k == "data" and _only_workers(saved, current))]
    if risky:
        log.warning("resuming with a config that differs from the run's in %s; the result will not match "
                    "an uninterrupted run", risky)
    return {k: current.get(k) for k in risky}


def _only_workers(saved: dict[str, Any], current: dict[str, Any]) -> bool:
    a, b = dict(saved.get("data", {})), dict(current.get("data", {}))
    a.pop("num_workers", None)
    b.pop("num_workers", None)
    return a == b

