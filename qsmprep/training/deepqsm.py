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

__all__ = ["TrainConfig", "train", "export_weights", "shape_spec", "validation_set",
           "validation_scores"]


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
    chi_range: float = 0.25         # shape contrast (ppm); see ShapeSpec
    min_chi: float = 0.0            # > 0: per-patch contrast log-uniform in [min_chi, chi_range]
    max_noise: float = 0.003        # field noise sigma (ppm) at contrast chi_range
    strong_prob: float = 0.15       # share of shapes that are strong sources
    strong_factor_min: float = 4.0  # strong source = contrast x uniform(min, max)
    strong_factor_max: float = 4.0
    strong_max_radius: float = 0.0  # > 0: strong sources are small spheres / thin cylinders
    tissue_prob: float = 0.0        # share of patches on a dense tissue-like texture
    bias: bool = True               # False: bias-free, scale-equivariant network
    loss: str = "mse"               # mse (ppm^2) | demeaned (relative, per patch; see _loss)
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


def _config_dict(cfg) -> dict:
    """A :class:`TrainConfig` or its dict (as stored in checkpoints and exported weights)
    as a dict; keys missing in older files take their defaults."""
    return dataclasses.asdict(TrainConfig()) | (cfg if isinstance(cfg, dict)
                                                else dataclasses.asdict(cfg))


def shape_spec(cfg):
    """The :class:`ShapeSpec` of a training config (a :class:`TrainConfig` or its dict)."""
    from ..algorithms.deepqsm.shapes import ShapeSpec

    c = _config_dict(cfg)
    return ShapeSpec(patch=c["patch_size"], chi_range=c["chi_range"], min_chi=c["min_chi"],
                     max_noise=c["max_noise"], strong_prob=c["strong_prob"],
                     strong_factor=(c["strong_factor_min"], c["strong_factor_max"]),
                     strong_max_radius=c["strong_max_radius"], tissue_prob=c["tissue_prob"],
                     min_std=0.01 if c["loss"] == "demeaned" else 0.0)


def _loss(torch, pred, chi, kind):
    """Training loss per batch: plain MSE, or (``"demeaned"``) the mean over patches of
    the relative squared error after removing each patch's mean,
    ``||e - mean(e)||^2 / ||chi - mean(chi)||^2`` with ``e = pred - chi``. A patch's mean
    susceptibility is all but invisible in its field (the dipole kernel vanishes at
    k = 0), as in the demeaned metrics of the QSM challenge; and every patch counts alike,
    whatever its contrast."""
    if kind == "mse":
        return torch.nn.functional.mse_loss(pred, chi)
    dims = tuple(range(1, chi.ndim))
    err = pred - chi
    err = err - err.mean(dims, keepdim=True)
    ref = chi - chi.mean(dims, keepdim=True)
    return ((err ** 2).sum(dims) / (ref ** 2).sum(dims).clamp_min(1e-12)).mean()


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


def validation_set(cfg, device="cpu", tkd=True):
    """The held-out validation batches ``[(inputs, chi), ...]`` of a training config (a
    :class:`TrainConfig` or its stored dict): ``val_size`` patches drawn once from the
    fixed seed ``val_seed``, in batches of 2; ``tkd`` adds the TKD input channel."""
    from ..algorithms.deepqsm.shapes import ShapeGenerator

    c = _config_dict(cfg)
    gen = ShapeGenerator(shape_spec(c), device=device, seed=c["val_seed"])
    return [gen.batch(min(2, c["val_size"] - i), tkd=tkd) for i in range(0, c["val_size"], 2)]


def validation_scores(torch, predict, val):
    """Mean MSE (ppm^2), demeaned NRMSE (%, per patch) and demeaned relative error (the
    ``"demeaned"`` loss) of ``predict(inputs) -> chi (ppm)`` over the validation batches."""
    mse, nrmse, rel, n = 0.0, 0.0, 0.0, 0
    with torch.inference_mode():
        for inputs, chi in val:
            pred = predict(inputs)
            mse += float(((pred - chi) ** 2).mean())
            rel += float(_loss(torch, pred, chi, "demeaned"))
            for p, c in zip(pred, chi):
                p = p - p.mean()
                c = c - c.mean()
                nrmse += 100.0 * float((p - c).norm() / c.norm().clamp_min(1e-12))
                n += 1
    return mse / len(val), nrmse / n, rel / len(val)


def _validate(torch, model, val, cfg):
    """:func:`validation_scores` of the model (in eval mode) over the validation set."""
    model.eval()
    scores = validation_scores(torch, lambda x: model(x * cfg.scale) / cfg.scale, val)
    model.train()
    return scores


def _val_entry(step, train_loss, val, lr, wall):
    vmse, vnrmse, vrel = val
    return {"step": step, "train_loss": train_loss, "val_mse": vmse, "val_nrmse": vnrmse,
            "val_rel": vrel, "lr": lr, "wall_seconds": wall}


def _val_key(cfg):
    """The validation figure that picks ``deepqsm-best.pt``: the training loss's."""
    return "val_mse" if cfg.loss == "mse" else "val_rel"


def _arch(cfg):
    arch = {"base": cfg.base_channels, "depth": cfg.depth, "dropout": cfg.dropout,
            "residual": cfg.residual}
    if not cfg.bias:
        arch["bias"] = False
    return arch


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
    from ..algorithms.deepqsm.shapes import ShapeGenerator
    from ..algorithms.deepqsm.unet import UNet3d
    from ..errors import UserInputError

    if cfg.patch_size % 2 ** cfg.depth:
        raise UserInputError(f"train-deepqsm: patch_size {cfg.patch_size} must be a multiple of "
                             f"2**depth = {2 ** cfg.depth}; choose e.g. 48, 64 or 96.")
    if cfg.loss not in ("mse", "demeaned"):
        raise UserInputError(f"train-deepqsm: loss {cfg.loss!r} is not known; use \"mse\" or "
                             "\"demeaned\".")
    if not 0 <= cfg.min_chi <= cfg.chi_range or cfg.chi_range <= 0:
        raise UserInputError(f"train-deepqsm: need 0 <= min_chi <= chi_range and chi_range > 0 "
                             f"(got min_chi {cfg.min_chi}, chi_range {cfg.chi_range}).")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = _device(torch, cfg.device)
    torch.manual_seed(cfg.seed)
    val = validation_set(cfg, device=dev, tkd=cfg.residual)
    gen = ShapeGenerator(shape_spec(cfg), device=dev, seed=cfg.seed)
    model = UNet3d(**_arch(cfg)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    ckpt_path = out / "checkpoint-last.pt"
    step, history, wall = 0, [], 0.0
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=dev, weights_only=True)  # tensors only
        if ck["arch"] != _arch(cfg) or ck["config"]["patch_size"] != cfg.patch_size:
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
        history.append(_val_entry(0, None, _validate(torch, model, val, cfg), 0.0, wall))
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
            loss = _loss(torch, pred, chi * cfg.scale, cfg.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            wall = wall0 + time.monotonic() - t_last
            lv = float(loss.detach()) / (cfg.scale ** 2 if cfg.loss == "mse" else 1.0)
            loss_avg = lv if loss_avg is None else 0.95 * loss_avg + 0.05 * lv
            extra = ""
            done = progress_fraction(step, wall, cfg) >= 1.0
            if step % cfg.val_every == 0 or done:
                history.append(_val_entry(step, loss_avg, _validate(torch, model, val, cfg), lr,
                                          wall0 + time.monotonic() - t_last))
                with open(out / "history.jsonl", "a") as fh:
                    fh.write(json.dumps(history[-1]) + "\n")
                h = history[-1]
                extra = (f" | val mse {h['val_mse']:.3e} rel {h['val_rel']:.3f} "
                         f"nrmse {h['val_nrmse']:.1f}%")
                key = _val_key(cfg)
                if h[key] <= min(x.get(key, math.inf) for x in history):  # best so far
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
