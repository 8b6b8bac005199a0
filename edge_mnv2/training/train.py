"""Training with the paper's recipe, interruptible and resumable.

Defaults follow the MobileNetV2 paper (section 6.1): TF-style RMSProp with decay 0.9 and momentum 0.9,
weight decay 4e-5, learning rate 0.045 decayed by 0.98 per epoch, batch 96. Each epoch ends with a
validation pass, a line in the metrics log and two atomic writes: the weights (``-o``) and the full
training state (``<output>.state.pt``). Ctrl-C finishes the current step and saves the state there; ``--resume``
continues from exactly there (the batch order of an epoch is a function of the seed and the epoch).

Detection and segmentation models train with the same recipe and loop on the generated scene sets
(``--data shapes-detection`` / ``shapes-segmentation``; ``shapes`` picks the set of the model's task):
SSD's multibox loss (anchors matched to boxes by IoU >= 0.5 plus each box's best anchor, smooth-L1 box
regression on the matched anchors, cross-entropy on them and on the hardest negatives, 3 per positive,
normalised by the positives) and per-pixel cross-entropy for segmentation. Validation reports mAP@0.5
and mAP@0.5:0.95 (detection) or mIoU (segmentation). ``init_backbone`` starts the MobileNetV2 backbone
from a trained classifier's ``features`` (the paper starts from ImageNet-trained weights).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_mnv2 import progress, signals
from edge_mnv2.errors import CheckpointError, EdgeMnv2Error
from edge_mnv2.models import get_spec
from edge_mnv2.training.optim import RMSpropTF


@dataclass(frozen=True)
class TrainConfig:
    model: str
    data: str = "shapes"
    epochs: int = 10
    batch_size: int = 96
    lr: float = 0.045
    lr_decay: float = 0.98  # per epoch
    warmup_epochs: float = 0.0  # linear warm-up (the paper has none)
    rms_decay: float = 0.9
    momentum: float = 0.9
    eps: float = 1.0  # TF-slim's RMSProp epsilon (inside the square root)
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0
    train_size: int | None = None  # procedural set only: images in the train split
    val_size: int | None = None
    seed: int = 0
    init_backbone: str | None = None  # a classifier model name or checkpoint whose features.* start the backbone

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise EdgeMnv2Error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 < self.lr_decay <= 1:
            raise EdgeMnv2Error(f"--lr must be positive and --lr-decay in (0, 1], got {self.lr}, {self.lr_decay}")
        if not 0 <= self.label_smoothing < 1:
            raise EdgeMnv2Error(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")


def state_path(output: Path) -> Path:
    return output.with_name(output.name + ".state.pt")


def metrics_path(output: Path) -> Path:
    return output.with_name(output.name + ".metrics.jsonl")


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _epoch_order(seed: int, epoch: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, epoch])
    return rng.permutation(n), rng.random(n) < 0.5  # order, horizontal flips


def _lr_at(cfg: TrainConfig, epoch: int, step: int, steps_per_epoch: int) -> float:
    lr = cfg.lr * cfg.lr_decay**epoch
    progress_epochs = epoch + step / steps_per_epoch
    if cfg.warmup_epochs and progress_epochs < cfg.warmup_epochs:
        lr *= (progress_epochs + 1 / steps_per_epoch) / cfg.warmup_epochs
    return lr


def checkpoint_payload(model: nn.Module, cfg: TrainConfig, data, history: list[dict]) -> dict:
    """The weights file: a state dict plus what the model is and how well it did."""
    spec = get_spec(cfg.model)
    # The model's num_classes: detection counts object classes, segmentation includes background.
    meta = {
        "model": cfg.model,
        "task": spec.task,
        "num_classes": len(data.classes),
        "classes": list(data.classes),
        "dataset": data.name,
        "resolution": spec.resolution,
        "preprocessing": spec.preprocessing.to_dict(),
        "config": asdict(cfg),
        "epochs_done": len(history),
        "val": history[-1] if history else None,
    }
    if spec.postprocessing is not None:
        meta["postprocessing"] = spec.postprocessing
    return {"state_dict": model.state_dict(), "meta": meta}


class _DeferredInterrupt:
    """The first Ctrl-C (or SIGTERM/SIGHUP: what systemd or a container runtime sends before it kills)
    is taken at the next step boundary, where the exact state can be saved (a step cut in half has
    already moved BatchNorm statistics). A second one stops at once; the state saved at the last epoch
    boundary remains."""

    def __init__(self):
        self.requested = False
        self._handlers = contextlib.ExitStack()
        self._handlers.enter_context(signals.handled(self._handle, (signal.SIGINT, *signals.SIGNALS)))

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\n  stopping after this step (Ctrl-C again to stop now)", file=sys.stderr, flush=True)

    def restore(self) -> None:
        self._handlers.close()


def train(cfg: TrainConfig, output: str | Path, resume: bool = False) -> dict:
    """Train ``cfg.model`` on ``cfg.data``; write weights to ``output``. Returns the last epoch's metrics."""
    from edge_mnv2.training.tasks import init_backbone, task_for

    cfg.validate()
    output = Path(output)
    spec = get_spec(cfg.model)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    state = None
    if resume:
        if not state_path(output).is_file():
            raise CheckpointError(
                f"nothing to resume: {str(state_path(output))!r} does not exist; start without --resume"
            )
        state = torch.load(state_path(output), map_location="cpu", weights_only=True)
        saved = TrainConfig(**state["config"])
        if (saved.model, saved.data) != (cfg.model, cfg.data):
            raise CheckpointError(
                f"{str(state_path(output))!r} trains {saved.model} on {saved.data}, not "
                f"{cfg.model} on {cfg.data}; use another -o or the same model and data"
            )
        cfg = TrainConfig(**dict(state["config"], epochs=cfg.epochs))  # only the epoch count may change
    task = task_for(spec, cfg)
    with progress.stage(f"preparing {task.data_name()} data at {spec.resolution}px"):
        train_set, val_set = task.open_data()
    model = spec.build(num_classes=len(train_set.classes)).to(memory_format=torch.channels_last)
    if cfg.init_backbone and state is None:
        init_backbone(model, cfg.init_backbone)
    optimizer = RMSpropTF(
        model.parameters(),
        lr=cfg.lr,
        decay=cfg.rms_decay,
        momentum=cfg.momentum,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )
    epoch, start_step, history = 0, 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, start_step, history = state["epoch"], state["step"], state["history"]
        torch.set_rng_state(state["torch_rng"])
    output.parent.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = len(train_set) // cfg.batch_size  # drop the last partial batch
    if steps_per_epoch < 1:
        raise EdgeMnv2Error(
            f"the train split has {len(train_set)} images, fewer than one batch of {cfg.batch_size}; lower --batch-size"
        )

    def save_state(step: int, rng: torch.Tensor) -> None:
        _atomic_save(
            {
                "config": asdict(cfg),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "history": history,
                "torch_rng": rng,
            },
            state_path(output),
        )

    step = start_step
    stop = _DeferredInterrupt()
    try:
        while epoch < cfg.epochs:
            started = time.perf_counter()
            order, flips = _epoch_order(cfg.seed, epoch, len(train_set))
            model.train()
            loss_sum, seen, stats = 0.0, 0, {}
            bar = progress.bar(
                range(step, steps_per_epoch), f"epoch {epoch + 1}/{cfg.epochs}", total=steps_per_epoch - step
            )
            for step in bar:
                if stop.requested:
                    save_state(step, torch.get_rng_state())
                    raise KeyboardInterrupt
                idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                x, target = task.batch(train_set, idx, flips[idx])
                for group in optimizer.param_groups:
                    group["lr"] = _lr_at(cfg, epoch, step, steps_per_epoch)
                out = model(x)
                loss, batch_stats = task.loss(out, target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if not torch.isfinite(loss):
                    raise EdgeMnv2Error(
                        f"training diverged (loss {loss.item()}) at epoch {epoch + 1} step "
                        f"{step}; lower --lr or add --warmup-epochs"
                    )
                loss_sum += loss.item() * len(idx)
                seen += len(idx)
                for key, value in batch_stats.items():
                    stats[key] = stats.get(key, 0) + value
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(**task.postfix(loss_sum, stats, seen))
            step = steps_per_epoch
            val = task.evaluate(model, val_set)
            record = {
                "epoch": epoch + 1,
                "lr": _lr_at(cfg, epoch, 0, steps_per_epoch),
                **task.train_record(loss_sum, stats, seen),
                **val,
                "seconds": round(time.perf_counter() - started, 1),
            }
            history.append(record)
            with open(metrics_path(output), "a") as log:
                log.write(json.dumps(record) + "\n")
            if not progress.is_quiet():
                print(
                    f"  epoch {epoch + 1}/{cfg.epochs}: {task.summary(record)} ({record['seconds']:.0f} s)", flush=True
                )
            epoch, step = epoch + 1, 0
            _atomic_save(checkpoint_payload(model, cfg, train_set, history), output)
            save_state(0, torch.get_rng_state())
            if stop.requested:
                raise KeyboardInterrupt
    finally:
        stop.restore()
    return history[-1] if history else {}
