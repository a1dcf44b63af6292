"""The registry of methods: one entry per method of every stage.

Each :class:`Method` names its stage, its parameters (a frozen dataclass whose fields carry
units, bounds and the nipype input they feed), what it needs beside the stage's main input
(magnitude, noise map, echo times, field strength, phase), what it consumes and produces
(total vs local field), what it requires to run (an FSL program, torch), the native method
used when that is missing, its citation and, for inversions, what lambda multiplies.

Everything that lists methods derives from here: the CLI choices and flags, the TOML tables
(``[background] method = "pdf"`` with per-method sub-tables ``[background.pdf]``),
``describe_methods``, the scorecard variants, availability and the parametrised tests.
Adding a method is its algorithm file, its interface, one entry below, and tests.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["Method", "Stage", "STAGES", "METHODS", "param", "method", "methods_of", "names",
           "params_table", "node_inputs", "available"]


def param(default, unit: str, doc: str, *, low=None, low_ok: bool = True, high=None,
          trait: str | None = None, auto: bool = False):
    """A method parameter: default, unit, one-line doc, bounds (``low``/``high``; ``low_ok``:
    whether ``low`` itself is allowed), the nipype input it feeds (``trait``, default its own
    name) and whether ``None`` means "chosen automatically" (``auto``)."""
    return field(default=default, metadata={"unit": unit, "doc": doc, "low": low,
                                            "low_ok": low_ok, "high": high, "trait": trait,
                                            "auto": auto})


@dataclass(frozen=True)
class NoParams:
    """A method without parameters."""


# ------------------------------------------------------------------ parameters, per method
@dataclass(frozen=True)
class BodyCoilParams:
    poly_order: int = param(2, "", "order of the polynomial fitted to the magnitude ratio",
                            low=0, high=6)


@dataclass(frozen=True)
class PhaseQualityMaskParams:
    quality_threshold: float = param(0.9, "", "voxels of phase quality at or below it are "
                                     "dropped", low=0, high=1)
    open_mm: float = param(4.0, "mm", "opening radius", low=0)
    erode_mm: float = param(0.0, "mm", "final erosion", low=0)


@dataclass(frozen=True)
class BetParams(PhaseQualityMaskParams):
    """BET's parameters, then those of the phase-quality refinement (with the phase)."""

    frac: float = param(0.5, "", "fractional intensity threshold (smaller: larger mask)",
                        low=0, low_ok=False, high=1)
    d1_mm: float = param(20.0, "mm", "inward search depth for the minimum intensity",
                         low=0, low_ok=False)
    d2_mm: float = param(10.0, "mm", "inward search depth for the maximum intensity",
                         low=0, low_ok=False)
    iterations: int = param(1000, "", "surface updates per pass", low=1)


@dataclass(frozen=True)
class FslBetParams:
    frac: float = param(0.5, "", "fractional intensity threshold of FSL's bet (-f)",
                        low=0, low_ok=False, high=1)
    erode_mm: float = param(0.0, "mm", "final erosion", low=0)


@dataclass(frozen=True)
class MagnitudeMaskParams:
    open_mm: float = param(4.0, "mm", "opening radius", low=0)
    erode_mm: float = param(0.0, "mm", "final erosion", low=0)


@dataclass(frozen=True)
class RomeoParams:
    template_echo: int = param(2, "", "echo unwrapped spatially first (1-based)", low=1)


@dataclass(frozen=True)
class EchoFitParams:
    consistency_mask: bool = param(True, "", "drop voxels whose field jumps between neighbours "
                                   "(unwrapping errors) from the mask", trait="apply_quality_mask")


@dataclass(frozen=True)
class PdfParams:
    max_iter: int = param(50, "", "conjugate-gradient iterations", low=1, trait="pdf_max_iter")


@dataclass(frozen=True)
class VsharpParams:
    radii_mm: tuple = param((), "mm", "kernel radii, largest first (empty: 9 mm down to 2 "
                            "voxels)", low=0, low_ok=False, trait="vsharp_radii_mm")
    threshold: float = param(0.05, "", "TSVD threshold on 1 - S(k)", low=0, low_ok=False,
                             high=1, trait="vsharp_threshold")


@dataclass(frozen=True)
class SharpParams:
    radius_mm: float = param(6.0, "mm", "kernel radius", low=0, low_ok=False,
                             trait="sharp_radius_mm")
    threshold: float = param(0.05, "", "TSVD threshold on 1 - S(k)", low=0, low_ok=False,
                             high=1, trait="vsharp_threshold")


@dataclass(frozen=True)
class LbvParams:
    peel: int = param(1, "voxels", "layers peeled off the mask after the boundary layer",
                      low=0, trait="lbv_peel")


_RULE_DOC = "automatic lambda rule: upre, gcv or lcurve"


@dataclass(frozen=True)
class L2Params:
    lam: float | None = param(None, "ppm^2 mm^2", "weight of ||grad chi||^2 (None: automatic)",
                              low=0, low_ok=False, auto=True)
    lambda_rule: str = param("upre", "", _RULE_DOC)


@dataclass(frozen=True)
class TkdParams:
    threshold: float = param(0.19, "", "kernel truncation", low=0, low_ok=False, high=1,
                             trait="tkd_threshold")


@dataclass(frozen=True)
class CgParams:
    lam: float | None = param(None, "ppm^2 mm^2", "weight of ||grad chi||^2 (None: automatic)",
                              low=0, low_ok=False, auto=True)
    lambda_rule: str = param("upre", "", _RULE_DOC)
    max_iter: int = param(80, "", "maximum CG iterations", low=1)


@dataclass(frozen=True)
class LambdaParams:
    lam: float | None = param(None, "", "regularisation weight (None: automatic)", low=0,
                              low_ok=False, auto=True)


@dataclass(frozen=True)
class TvParams:
    lam: float | None = param(None, "ppm mm", "weight of the magnitude-masked ||M grad chi||_1 "
                              "(None: automatic)", low=0, low_ok=False, trait="tv_lam", auto=True)


# ---------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class Method:
    stage: str
    name: str
    summary: str
    params: type = NoParams
    needs: tuple = ()          # extra inputs: magnitude, phase, noise, echo_times, field_strength
    consumes: str = ""         # inversion: "local_field" or "total_field"
    requires: str = ""         # "fsl:<program>" or "torch"
    fallback: str = ""         # native method of the same stage when ``requires`` is missing
    citation: str = ""
    lambda_convention: str = ""
    interface: str = ""        # module.Class under qsmprep.interfaces running it (one node)


@dataclass(frozen=True)
class Stage:
    name: str
    title: str                 # words for the console and the methods line
    flag: str                  # command-line option choosing the method
    default: str
    toml_key: str = "method"   # key of the method name in the stage's TOML table


STAGES = (
    Stage("coils", "uncombined channels", "--coil-combination", "auto"),
    Stage("mask", "mask", "--mask-method", "bet"),
    Stage("phase_offset", "phase offset", "--phase-offset", "fit"),
    Stage("unwrap", "unwrap", "--unwrapping", "temporal"),
    Stage("echoes", "fit", "--echo-fit", "linear"),
    Stage("r2star", "R2*", "--r2star", "arlo"),
    Stage("background", "background", "--background", "pdf"),
    Stage("inversion", "inversion", "--inversion", "tv"),
)

_L2_LAMBDA = ("lambda multiplies ||grad chi||^2 (forward-difference gradients in 1/mm) against "
              "||D chi - f||^2 with f in ppm")

METHODS = (
    Method("coils", "auto", "bodycoil where a body-coil reference exists, else mcpc3ds",
           BodyCoilParams),
    Method("coils", "bodycoil", "body-coil-normalised sensitivities, least-squares combination",
           BodyCoilParams, citation="Bilgic et al."),
    Method("coils", "mcpc3ds", "phase-offset-corrected combination (MCPC-3D-S)",
           citation="Eckstein et al., MRM 2018"),
    Method("coils", "adaptive", "adaptive combination of smoothed channel covariances",
           citation="Walsh et al., MRM 2000"),
    Method("mask", "bet", "native BET (surface model) refined by phase quality", BetParams,
           needs=("phase",), citation="Smith, Hum Brain Mapp 2002;17:143-155"),
    Method("mask", "fsl_bet", "FSL's bet program", FslBetParams, requires="fsl:bet",
           fallback="bet", citation="Smith, Hum Brain Mapp 2002;17:143-155"),
    Method("mask", "phase_quality", "magnitude threshold and phase quality + opening",
           PhaseQualityMaskParams, needs=("phase",),
           citation="Dymerska et al., MRM 2021 (phase-coherence quality)"),
    Method("mask", "magnitude", "Otsu threshold of the log magnitude + opening",
           MagnitudeMaskParams),
    Method("phase_offset", "fit", "the echo fit's intercept"),
    Method("phase_offset", "mcpc3ds", "removed before unwrapping (MCPC-3D-S)",
           needs=("echo_times",), citation="Eckstein et al., MRM 2018"),
    Method("unwrap", "temporal", "echo difference along a quality-guided tree",
           needs=("mask", "echo_times")),
    Method("unwrap", "laplacian", "Laplacian unwrapping", needs=("echo_times",),
           citation="Schofield & Zhu, Opt Lett 2003"),
    Method("unwrap", "romeo", "quality-guided region growing (ROMEO-like)", RomeoParams,
           needs=("mask", "echo_times"), citation="Dymerska et al., MRM 2021"),
    Method("unwrap", "prelude", "FSL PRELUDE", requires="fsl:prelude", fallback="romeo",
           needs=("mask",), citation="Jenkinson, MRM 2003"),
    Method("echoes", "linear", "weighted linear fit with phase offset and noise map",
           EchoFitParams),
    Method("echoes", "nonlinear", "complex nonlinear fit", EchoFitParams,
           citation="Liu et al., MRM 2013"),
    Method("r2star", "arlo", "ARLO (>= 3 equally spaced echoes, else log-linear)",
           citation="Pei et al., MRM 2015"),
    Method("r2star", "loglinear", "log-linear least squares"),
    Method("background", "pdf", "projection onto dipole fields", PdfParams, needs=("noise",),
           citation="Liu et al., NMR Biomed 2011"),
    Method("background", "vsharp", "V-SHARP", VsharpParams,
           citation="Wu et al., MRM 2012"),
    Method("background", "sharp", "SHARP", SharpParams,
           citation="Schweser et al., NeuroImage 2011"),
    Method("background", "lbv", "Laplacian boundary value", LbvParams,
           citation="Zhou et al., NMR Biomed 2014"),
    Method("inversion", "l2", "closed-form L2 with gradient regulariser", L2Params,
           consumes="local_field", citation="Bilgic et al., MRM 2014",
           lambda_convention=_L2_LAMBDA),
    Method("inversion", "tkd", "truncated k-space division", TkdParams, consumes="local_field",
           citation="Shmueli et al., MRM 2009"),
    Method("inversion", "cg", "noise-weighted L2 by conjugate gradients", CgParams,
           needs=("noise",), consumes="local_field", lambda_convention=_L2_LAMBDA),
    Method("inversion", "focuss", "FOCUSS with magnitude prior", L2Params,
           needs=("magnitude",), consumes="local_field",
           citation="Gorodnitsky & Rao, IEEE TSP 1997"),
    # TV is not given the noise map on purpose: at its automatic lambda, noise weighting
    # measured no better (docs/inversion.md); tv_admm accepts one for direct use
    Method("inversion", "tv", "magnitude-weighted TV (ADMM)", TvParams, needs=("magnitude",),
           consumes="local_field", citation="Liu et al., MRM 2012 (MEDI); Bilgic et al. 2014",
           lambda_convention="lambda multiplies ||M grad chi||_1 against ||W (D chi - f)||^2/2"),
    Method("inversion", "tfi", "total field inversion", LambdaParams, needs=("magnitude",
           "noise"), consumes="total_field", citation="Liu et al., MRM 2018"),
    Method("inversion", "preconditioned", "prior-preconditioned regularised QSM", LambdaParams,
           needs=("magnitude", "noise", "echo_times", "field_strength"), consumes="total_field",
           lambda_convention=_L2_LAMBDA),
    Method("inversion", "deepqsm", "DeepQSM 3-D U-Net", consumes="local_field",
           requires="torch", citation="Bollmann et al., NeuroImage 2019"),
)

_INTERFACES = {  # (stage, method) or stage -> the interface that runs it
    "coils": "coils.CombineCoils", ("mask", "fsl_bet"): "fsl.BetBrainMask",
    "mask": "masking.NativeBrainMask", ("phase_offset", "mcpc3ds"): "phase.RemovePhaseOffset",
    ("unwrap", "prelude"): "fsl.PreludeUnwrap", "unwrap": "fieldmap.UnwrapPhase",
    "echoes": "fieldmap.FitField", "r2star": "r2star.R2StarMap",
    "background": "background.RemoveBackground", ("inversion", "tfi"):
    "totalfield.TotalFieldInversion", ("inversion", "preconditioned"):
    "preconditioned.PreconditionedQSM", ("inversion", "deepqsm"): "deepqsm.DeepQSM",
    "inversion": "inversion.InvertDipole",
}
METHODS = tuple(replace(m, interface=_INTERFACES.get((m.stage, m.name),
                                                     _INTERFACES.get(m.stage, "")))
                for m in METHODS)
_BY_KEY = {(m.stage, m.name): m for m in METHODS}
_STAGES = {s.name: s for s in STAGES}


def stage(name: str) -> Stage:
    return _STAGES[name]


def method(stage_name: str, name: str) -> Method:
    return _BY_KEY[(stage_name, name)]


def methods_of(stage_name: str) -> tuple[Method, ...]:
    return tuple(m for m in METHODS if m.stage == stage_name)


def names(stage_name: str, interface: str | None = None) -> tuple[str, ...]:
    """The method names of a stage; with ``interface`` (``"module.Class"``), those it runs."""
    return tuple(m.name for m in methods_of(stage_name)
                 if interface is None or m.interface == interface)


def params_table(params) -> list[tuple[str, Any, dict]]:
    """``(name, value, metadata)`` of a parameter dataclass instance."""
    return [(f.name, getattr(params, f.name), dict(f.metadata)) for f in fields(params)]


def node_inputs(params) -> dict:
    """The nipype inputs a parameter dataclass instance sets (``None`` = automatic: unset)."""
    out = {}
    for f in fields(params):
        value = getattr(params, f.name)
        if value is None:
            continue
        out[f.metadata.get("trait") or f.name] = list(value) if isinstance(value, tuple) else value
    return out


def available(m: Method) -> bool:
    """Whether ``m`` can run here (its FSL program installed, torch importable)."""
    if m.requires.startswith("fsl:"):
        from .fsl import fsl_available

        return fsl_available((m.requires.split(":", 1)[1],))
    if m.requires == "torch":
        return importlib.util.find_spec("torch") is not None
    return True
