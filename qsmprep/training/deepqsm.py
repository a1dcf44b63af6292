"""Train the DeepQSM U-Net on synthetic shapes, with validation, checkpoints and resume.

The recipe follows Bollmann et al. (NeuroImage 2019): random shapes convolved with the
dipole kernel, generated on the fly (:mod:`qsmprep.algorithms.deepqsm.shapes`), a 3-D
U-Net (:mod:`qsmprep.algorithms.deepqsm.unet`) fitted with Adam on the mean squared error
of susceptibility. Additions: a cosine learning-rate schedule with linear warm-up, a
held-out validation set drawn once from a fixed seed, and a checkpoint (model, optimiser,
data-generator RNG state, history) written atomically every ``checkpoint_every`` steps
and on SIGINT/SIGTERM, so an interrupted run resumes exactly where it stopped.

Files in ``output_dir``: ``checkpoint-last.pt`` (resume state), ``history.jsonl`` (one
JSON line per validation), ``deepqsm.pt`` (exported weights of the final step, what
:func:`qsmprep.algorithms.deepqsm.load_model` reads), ``deepqsm-best.pt`` (weights at
the lowest validation MSE so far) and ``config.toml``. Gradients are clipped to a global
norm of ``grad_clip``: without it a first CPU run at lr 1e-3 improved on TKD for 250
steps, then collapsed to a constant correction (dead ReLUs) by step 350.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..algorithms.deepqsm._torch import require_torch

__all__ = ["TrainConfig", "train", "export_weights"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (TOML keys = field names)."""

    output_dir: str = "deepqsm-run"
    steps: int = 2000
    batch_size: int = 2
    patch_size: int = 64
    lr: float = 1e-3                # peak learning rate (Adam)
    min_lr: float = 2e-5            # end of the cosine schedule
    warmup: int = 50                # linear warm-up steps
    base_channels: int = 8
    depth: int = 4
    dropout: float = 0.05
    residual: bool = True           # inputs (field, TKD), predict a correction to TKD
    scale: float = 10.0             # network sees field*scale, predicts chi*scale (ppm)
    seed: int = 0                   # training-data and initialisation seed
    val_seed: int = 20190517        # fixed seed of the held-out validation set
    val_size: int = 8
    val_every: int = 100
    checkpoint_every: int = 25
    device: str = "auto"            # auto | cpu | cuda
    threads: int = 0                # torch CPU threads (0 = torch's default)
    chi_range: float = 0.25
    max_noise: float = 0.003
    max_minutes: float = 0.0        # wall-time budget; 0 = none (see progress_fraction)
    grad_clip: float = 1.0          # max global gradient norm (0 = off); guards divergence

    def replace(self, **kw) -> "TrainConfig":
        return dataclasses.replace(self, **{k: v for k, v in kw.items() if v is not None})

    def to_toml(self) -> str:
        lines = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            lines.append(f"{f.name} = " + (json.dumps(v) if isinstance(v, str) else repr(v)))
        return "\n".join(lines) + "\n"


def progress_fraction(step: int, wall_seconds: float, cfg: TrainConfig) -> float:
    """How far the run is, in [0, 1]: the larger of steps done / ``steps`` and, with a
    ``max_minutes`` budget, wall time used / budget. Training stops at 1; the learning
    rate schedule follows this fraction, so a run cut short by its time budget (a busy
    CPU) still ends with a fully decayed learning rate."""
    f = step / cfg.steps
    if cfg.max_minutes > 0:
        f = max(f, wall_seconds / (60.0 * cfg.max_minutes))
    return min(1.0, f)


def lr_at(step: int, frac: float, cfg: TrainConfig) -> float:
    """Cosine decay from ``lr`` to ``min_lr`` over the run fraction ``frac``, times a
    linear warm-up over the first ``warmup`` steps."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup))
    return warm * (cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * frac)))


def _device(torch, name: str):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from ..errors import UserInputError

        raise UserInputError("train-deepqsm: --device cuda was requested but PyTorch sees no CUDA "
                             "GPU. Use --device cpu (or auto), or install a CUDA build of torch.")
    return torch.device(name)


def _atomic_save(torch, obj, path: Path):
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _validate(torch, model, val, cfg):
    """Mean MSE (ppm^2) and demeaned NRMSE (%) of the model over the validation set."""
    model.eval()
    mse, nrmse = 0.0, 0.0
    with torch.inference_mode():
        for field, chi in val:
            pred = model(field * cfg.scale) / cfg.scale
            mse += float(((pred - chi) ** 2).mean())
            for p, c in zip(pred, chi):
                p = p - p.mean()
                c = c - c.mean()
                nrmse += 100.0 * float((p - c).norm() / c.norm().clamp_min(1e-12))
    model.train()
    return mse / len(val), nrmse / (len(val) * val[0][0].shape[0])


def _arch(cfg):
    return {"base": cfg.base_channels, "depth": cfg.depth, "dropout": cfg.dropout,
            "residual": cfg.residual}


def export_weights(checkpoint: dict, path) -> Path:
    """Write the inference file (weights + metadata) from a training checkpoint."""
    torch = require_torch()
    path = Path(path)
    cfg = checkpoint["config"]
    state = {k: v.detach().cpu().float() for k, v in checkpoint["model"].items()}
    payload = {
        "format": "qsmprep-deepqsm-1",
        "arch": checkpoint["arch"],
        "state_dict": state,
        "scale": cfg["scale"],
        "voxel_size": (1.0, 1.0, 1.0),   # training grid (mm); B0 along array axis 2
        "b0_axis": 2,
        "tkd_threshold": 0.19,
        "steps": checkpoint["step"],
        "config": cfg,
        "wall_seconds": checkpoint.get("wall_seconds"),
        "hardware": checkpoint.get("hardware"),
        "validation": checkpoint["history"][-1] if checkpoint["history"] else None,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(torch, payload, path)
    return path


class _Progress:
    """A one-line progress bar on a terminal, periodic lines otherwise."""

    def __init__(self, total, stream, every=10):
        self.total, self.stream, self.every = total, stream, every
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def update(self, step, loss, lr, rate, extra=""):
        if not self.tty and step % self.every and step != self.total:
            return
        frac = step / self.total
        bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        msg = (f"[{bar}] {step}/{self.total} loss {loss:.3e} lr {lr:.1e} "
               f"{rate:.2f} step/s eta {eta / 60:.1f} min{extra}")
        self.stream.write(("\r" + msg) if self.tty else (msg + "\n"))
        self.stream.flush()


def train(cfg: TrainConfig, resume: bool = True, stream=sys.stderr) -> dict:
    """Run (or resume) training; return the final checkpoint dict (also saved to disk)."""
    torch = require_torch()
    from ..algorithms.deepqsm.shapes import ShapeGenerator, ShapeSpec
    from ..algorithms.deepqsm.unet import UNet3d

    if cfg.patch_size % 2 ** cfg.depth:
        from ..errors import UserInputError

        raise UserInputError(f"train-deepqsm: patch_size {cfg.patch_size} must be a multiple of "
                             f"2**depth = {2 ** cfg.depth}; choose e.g. 48, 64 or 96.")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = _device(torch, cfg.device)
    torch.manual_seed(cfg.seed)
    spec = ShapeSpec(patch=cfg.patch_size, chi_range=cfg.chi_range, max_noise=cfg.max_noise)
    val_gen = ShapeGenerator(spec, device=dev, seed=cfg.val_seed)
    val = [val_gen.batch(min(2, cfg.val_size - i), tkd=cfg.residual)
           for i in range(0, cfg.val_size, 2)]
    gen = ShapeGenerator(spec, device=dev, seed=cfg.seed)
    model = UNet3d(**_arch(cfg)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ckpt_path = out / "checkpoint-last.pt"
    step, history, wall = 0, [], 0.0
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=dev, weights_only=False)
        if ck["arch"] != _arch(cfg) or ck["config"]["patch_size"] != cfg.patch_size:
            from ..errors import UserInputError

            raise UserInputError(f"train-deepqsm: {ckpt_path} was written with a different network "
                                 "or patch size than requested. Use the same settings, another "
                                 "--output-dir, or --no-resume to start over.")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"].to(gen.gen.get_state().device))
        torch.set_rng_state(ck["torch_rng"])
        step, history, wall = ck["step"], ck["history"], ck.get("wall_seconds", 0.0)
        stream.write(f"train-deepqsm: resumed from {ckpt_path} at step {step}\n")
    (out / "config.toml").write_text(cfg.to_toml())
    hardware = (torch.cuda.get_device_name(dev) if dev.type == "cuda"
                else f"cpu, {torch.get_num_threads()} torch threads")

    def checkpoint():
        return {"model": model.state_dict(), "optimizer": opt.state_dict(),
                "generator": gen.state(), "torch_rng": torch.get_rng_state(), "step": step,
                "history": history, "config": dataclasses.asdict(cfg), "arch": _arch(cfg),
                "wall_seconds": wall, "hardware": hardware}

    stop = {"flag": False}

    def _on_signal(signum, frame):  # finish the step, save, exit cleanly
        stop["flag"] = True

    old = {}
    try:
        old = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: no signal handling
        pass
    if not history:  # the starting point (TKD level for residual models)
        vmse, vnrmse = _validate(torch, model, val, cfg)
        history.append({"step": 0, "train_loss": None, "val_mse": vmse, "val_nrmse": vnrmse,
                        "lr": 0.0, "wall_seconds": wall})
        with open(out / "history.jsonl", "a") as fh:
            fh.write(json.dumps(history[-1]) + "\n")
    bar = _Progress(cfg.steps, stream, every=5)
    model.train()
    t_last, s_last, loss_avg = time.monotonic(), step, None
    wall0 = wall
    try:
        while progress_fraction(step, wall, cfg) < 1.0 and not stop["flag"]:
            lr = lr_at(step, progress_fraction(step, wall, cfg), cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            field, chi = gen.batch(cfg.batch_size, tkd=cfg.residual)
            pred = model(field * cfg.scale)
            loss = torch.nn.functional.mse_loss(pred, chi * cfg.scale)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            wall = wall0 + time.monotonic() - t_last
            lv = float(loss.detach()) / cfg.scale ** 2
            loss_avg = lv if loss_avg is None else 0.95 * loss_avg + 0.05 * lv
            extra = ""
            done = progress_fraction(step, wall, cfg) >= 1.0
            if step % cfg.val_every == 0 or done:
                vmse, vnrmse = _validate(torch, model, val, cfg)
                history.append({"step": step, "train_loss": loss_avg, "val_mse": vmse,
                                "val_nrmse": vnrmse, "lr": lr,
                                "wall_seconds": wall0 + time.monotonic() - t_last})
                with open(out / "history.jsonl", "a") as fh:
                    fh.write(json.dumps(history[-1]) + "\n")
                extra = f" | val mse {vmse:.3e} nrmse {vnrmse:.1f}%"
                if vmse <= min(h["val_mse"] for h in history):  # best so far: keep it
                    export_weights(checkpoint(), out / "deepqsm-best.pt")
                if bar.tty:
                    extra += "\n"
            rate = (step - s_last) / max(1e-9, time.monotonic() - t_last)
            bar.update(step, loss_avg, lr, rate, extra)
            if step % cfg.checkpoint_every == 0 or done:
                _atomic_save(torch, checkpoint(), ckpt_path)
        ck = checkpoint()
        ck["done"] = progress_fraction(step, wall, cfg) >= 1.0
        _atomic_save(torch, ck, ckpt_path)
        if ck["done"]:
            export_weights(ck, out / "deepqsm.pt")
            stream.write(f"\ntrain-deepqsm: done, {step} steps in {wall / 60:.1f} min -> "
                         f"{out / 'deepqsm.pt'}\n")
        else:
            stream.write(f"\ntrain-deepqsm: stopped at step {step}; checkpoint {ckpt_path} "
                         "(re-run the same command to resume)\n")
        return ck
    finally:
        for s, h in old.items():
            signal.signal(s, h)
