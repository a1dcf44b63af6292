"""``qsmprep stage STAGE --method NAME ...``: one stage's method on plain NIfTI files.

The commands, their ``--method`` choices and each method's parameter flags (with units) are
generated from the registry (:mod:`qsmprep.methods`), and a command runs the same nipype
interface the pipeline's node runs, so ``qsmprep stage invert`` on a local field gives the
pipeline's chi. The B0 direction comes from the NIfTI affine (voxel coordinates), as in
the pipeline. Examples::

    qsmprep stage invert --method tv local_ppm.nii.gz --mask mask.nii.gz \\
        --magnitude mag.nii.gz -o chi.nii.gz
    qsmprep stage background --method lbv total_ppm.nii.gz --mask mask.nii.gz -o local.nii.gz
    qsmprep stage mask --method bet magnitude.nii.gz -o mask.nii.gz
    qsmprep stage unwrap --method romeo phase.nii.gz --magnitude mag.nii.gz \\
        --echo-times 0.004 0.008 0.012 -o unwrapped.nii.gz
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

from nipype.utils.filemanip import split_filename

from .. import methods
from ..errors import UserInputError

# command -> (stage, main input: (interface input, help), outputs: {interface output: suffix})
COMMANDS = {
    "mask": ("mask", ("magnitude", "magnitude image (3-D, or 4-D with echoes last)"),
             {"mask": ""}),
    "unwrap": ("unwrap", ("phase", "wrapped phase (radians; 4-D with echoes last, or 3-D)"),
               {"unwrapped": ""}),
    "background": ("background", ("total_field", "total field map (ppm of B0)"),
                   {"local_field": "", "mask": "_mask"}),
    "invert": ("inversion", ("local_field", "local field map (ppm of B0); the total field for "
                             "the total-field methods (tfi, preconditioned)"),
               {"chi": "", "mask": "_mask"}),
}
# extra file inputs a method may need (registry ``needs``) -> (flag, interface input, help)
_FILES = {
    "phase": ("--phase", "phase", "wrapped phase (radians), same grid"),
    "mask": ("--mask", "mask", "brain mask (non-zero inside), same grid"),
    "noise": ("--noise", "noise", "field noise map (ppm), same grid"),
    "magnitude": ("--magnitude", "magnitude", "magnitude (3-D or 4-D echoes), same grid"),
}
_UNSUPPORTED = {("inversion", "preconditioned")}  # needs echo times, B0 and 4-D echoes


def _stage_methods(stage):
    return [m for m in methods.methods_of(stage)
            if (stage, m.name) not in _UNSUPPORTED and not m.requires.startswith("fsl:")]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qsmprep stage", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for command, (stage, (main_input, main_help), _) in COMMANDS.items():
        ms = _stage_methods(stage)
        sp = sub.add_parser(command, help=f"{methods.stage(stage).title}: "
                            + ", ".join(m.name for m in ms))
        sp.add_argument("input", type=Path, help=main_help)
        sp.add_argument("--method", choices=[m.name for m in ms],
                        default=methods.stage(stage).default,
                        help="; ".join(f"{m.name}: {m.summary}" for m in ms)
                        + f" (default {methods.stage(stage).default})")
        for key, (flag, _, what) in _FILES.items():
            if key != "mask" or stage != "mask":
                sp.add_argument(flag, dest=f"file_{key}", type=Path, metavar="FILE", help=what)
        if stage == "unwrap":
            sp.add_argument("--echo-times", nargs="+", type=float, required=True,
                            metavar="SECONDS", help="echo times [s], one per echo of the phase")
        sp.add_argument("-o", "--output", type=Path, required=True,
                        help="output NIfTI (a mask of where it is defined is written beside it "
                        "with _mask where the method changes the mask)")
        seen = set()
        for m in ms:
            for f in fields(m.params):
                if f.name in seen:
                    continue
                seen.add(f.name)
                meta = f.metadata
                unit = f" [{meta['unit']}]" if meta.get("unit") else ""
                users = [x.name for x in ms if f.name in {g.name for g in fields(x.params)}]
                sp.add_argument(f"--{f.name.replace('_', '-')}", dest=f"param_{f.name}",
                                metavar="VALUE", help=f"{meta.get('doc', '')}{unit} "
                                f"({', '.join(users)}; default {f.default})")
        sp.add_argument("--threads", type=int, default=1, help="FFT threads")
    return p


def _interface(m):
    module, cls = m.interface.rsplit(".", 1)
    return getattr(importlib.import_module(f"qsmprep.interfaces.{module}"), cls)


def run_stage(args) -> int:
    from ..bids.derivatives import atomic_copy
    from ..config import PipelineSettings, set_params, validate_pipeline
    from ..qc import warnings_of

    stage, (main_input, _), outputs = COMMANDS[args.command]
    m = methods.method(stage, args.method)
    values = {f.name: getattr(args, f"param_{f.name}") for f in fields(m.params)
              if getattr(args, f"param_{f.name}", None) is not None}
    settings = PipelineSettings().with_method(stage, m.name)
    if values:
        settings = set_params(settings, stage, m.name, {k: _parse(v) for k, v in values.items()},
                              "the command line")
    validate_pipeline(settings, "the command line")
    iface = _interface(m)()
    if m.consumes == "total_field":
        main_input = "total_field"
    inputs = {main_input: str(args.input.resolve())}
    if "method" in iface.inputs.copyable_trait_names():
        inputs["method"] = m.name
    elif "fit" in iface.inputs.copyable_trait_names():
        inputs["fit"] = m.name
    for key, (flag, name, _) in _FILES.items():
        path = getattr(args, f"file_{key}", None)
        if path is not None:
            if name not in iface.inputs.copyable_trait_names():
                raise UserInputError(f"{flag} is not used by the {stage} method {m.name}; leave "
                                     "it out.")
            inputs[name] = str(path.resolve())
        elif name not in inputs and (key in m.needs or (
                name in iface.inputs.copyable_trait_names()
                and iface.inputs.traits()[name].mandatory)):
            raise UserInputError(f"the {stage} method {m.name} needs {flag} ({_FILES[key][2]}).")
    if stage == "unwrap":
        inputs["echo_times"] = [float(v) for v in args.echo_times]
    inputs.update(methods.node_inputs(settings.params_of(stage)))
    if "n_threads" in iface.inputs.copyable_trait_names():
        inputs["n_threads"] = args.threads
    for path in [args.input] + [getattr(args, f"file_{k}", None) for k in _FILES]:
        if path is not None and not Path(path).is_file():
            raise UserInputError(f"{path} does not exist; give the path of a NIfTI file.")
    for key, value in inputs.items():
        setattr(iface.inputs, key, value)
    out = args.output.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qsmprep-stage-") as tmp:
        result = iface.run(cwd=tmp)
        for name, suffix in outputs.items():
            src = getattr(result.outputs, name, None)
            if src and Path(src).is_file():
                dst = out if not suffix else _with_suffix(out, suffix)
                atomic_copy(src, dst)
                print(f"qsmprep stage {args.command} ({m.name}): wrote {dst}")
    for warning in warnings_of(getattr(result.outputs, "parameters", None)):
        print(f"WARNING: {warning}", file=sys.stderr)
    return 0


def _parse(text):
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "auto":
        return "auto"
    if "," in text:
        return [float(v) for v in text.split(",") if v.strip()]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _with_suffix(path: Path, suffix: str) -> Path:
    folder, base, ext = split_filename(str(path))  # nipype's: knows .nii.gz
    return Path(folder) / f"{base}{suffix}{ext}"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_stage(args)
