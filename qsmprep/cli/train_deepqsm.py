"""``qsmprep train-deepqsm``: train the DeepQSM network on synthetic shapes.

Settings come from the defaults of :class:`qsmprep.training.deepqsm.TrainConfig`, then an
optional TOML file (``--config``; the shipped recipes are ``--config cpu`` and
``--config gpu``), then flags. Re-running the same command resumes from
``OUTPUT_DIR/checkpoint-last.pt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tomllib
from pathlib import Path

from ..errors import UserInputError

RECIPES = Path(__file__).resolve().parent.parent / "data" / "deepqsm"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qsmprep train-deepqsm",
        description="Train the DeepQSM 3-D U-Net on random shapes convolved with the dipole "
                    "kernel (generated on the fly). Re-run the same command to resume.")
    p.add_argument("--config", help="TOML file of settings, or a shipped recipe name: cpu | gpu")
    p.add_argument("--output-dir", "-o", help="checkpoints, history and weights go here")
    p.add_argument("--steps", type=int, help="optimiser steps")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--patch-size", type=int, help="cube side in voxels (multiple of 16)")
    p.add_argument("--lr", type=float, help="peak learning rate (cosine decay after warm-up)")
    p.add_argument("--min-lr", type=float)
    p.add_argument("--warmup", type=int)
    p.add_argument("--base-channels", type=int)
    p.add_argument("--depth", type=int, help="pooling levels (input padded to 2**depth)")
    p.add_argument("--dropout", type=float)
    p.add_argument("--grad-clip", type=float, help="max gradient norm (0: off)")
    p.add_argument("--seed", type=int)
    p.add_argument("--val-size", type=int)
    p.add_argument("--val-every", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, help="torch CPU threads (0: torch default)")
    p.add_argument("--max-minutes", type=float,
                   help="wall-time budget: stop (with a fully decayed learning rate) when spent")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--export", type=Path, help="also copy the final weights to this path")
    return p


def load_config_file(name: str) -> dict:
    path = Path(name)
    if not path.exists() and (RECIPES / f"train-{name}.toml").exists():
        path = RECIPES / f"train-{name}.toml"
    if not path.exists():
        raise UserInputError(f"train-deepqsm: config file {name} does not exist. Give a TOML file "
                             "path or one of the shipped recipes: cpu, gpu.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"train-deepqsm: {path} is not valid TOML ({exc}); fix the file.") from exc
    from ..training.deepqsm import TrainConfig

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UserInputError(f"train-deepqsm: {path} has unknown keys {unknown}; valid keys are "
                             f"{sorted(known)}.")
    return data


def main(argv) -> int:
    args = build_parser().parse_args(argv)
    from ..training.deepqsm import TrainConfig, train

    cfg = TrainConfig()
    if args.config:
        cfg = cfg.replace(**load_config_file(args.config))
    cfg = cfg.replace(**{f.name: getattr(args, f.name, None) for f in dataclasses.fields(cfg)})
    ck = train(cfg, resume=not args.no_resume, stream=sys.stderr)
    if args.export and ck.get("done"):
        args.export.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(cfg.output_dir) / "deepqsm.pt", args.export)
        print(f"train-deepqsm: weights copied to {args.export}")
    return 0 if ck.get("done") else 130
