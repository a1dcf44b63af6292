"""The run configuration: one frozen dataclass, built only by the CLI.

Built from defaults, then a preset pipeline TOML (``--pipeline NAME|FILE``), then
command-line flags, and passed down as explicit arguments. Nothing here is
global or mutable.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import UserInputError

__all__ = ["PipelineSettings", "Config", "PRESET_DIR", "list_presets", "load_pipeline"]

# presets live in the top-level workflows/ folder; the wheel carries them as package data
_REPO_PRESETS = Path(__file__).resolve().parent.parent / "workflows"
_PKG_PRESETS = Path(__file__).resolve().parent / "data" / "pipelines"
PRESET_DIR = _REPO_PRESETS if _REPO_PRESETS.is_dir() else _PKG_PRESETS


@dataclass(frozen=True)
class PipelineSettings:
    """Method choices and parameters of one pipeline (one preset TOML)."""

    name: str = "default"
    description: str = ""
    mask_method: str = "native"
    mask_open_mm: float = 4.0
    mask_erode_mm: float = 0.0
    unwrap_method: str = "temporal"
    background_method: str = "pdf"
    vsharp_radii_mm: tuple = ()
    vsharp_threshold: float = 0.05
    pdf_max_iter: int = 40
    inversion_method: str = "l2"
    l2_lambda: float | None = None
    lambda_rule: str = "gcv"
    tkd_threshold: float = 0.19


_CHOICES = {
    "mask_method": ("native",),
    "unwrap_method": ("temporal", "laplacian"),
    "background_method": ("pdf", "vsharp"),
    "inversion_method": ("l2", "tkd"),
    "lambda_rule": ("gcv", "lcurve"),
}

# TOML table/key -> PipelineSettings field
_TOML_KEYS = {
    ("pipeline", "name"): "name",
    ("pipeline", "description"): "description",
    ("mask", "method"): "mask_method",
    ("mask", "open_mm"): "mask_open_mm",
    ("mask", "erode_mm"): "mask_erode_mm",
    ("unwrap", "method"): "unwrap_method",
    ("background", "method"): "background_method",
    ("background", "vsharp_radii_mm"): "vsharp_radii_mm",
    ("background", "vsharp_threshold"): "vsharp_threshold",
    ("background", "pdf_max_iter"): "pdf_max_iter",
    ("inversion", "method"): "inversion_method",
    ("inversion", "lambda"): "l2_lambda",
    ("inversion", "lambda_rule"): "lambda_rule",
    ("inversion", "tkd_threshold"): "tkd_threshold",
}


@dataclass(frozen=True)
class Config:
    """Everything a participant run needs."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    analysis_level: str = "participant"
    participant_labels: tuple = ()
    session_labels: tuple = ()
    bids_filters: dict = field(default_factory=dict, hash=False)
    pipeline: PipelineSettings = PipelineSettings()
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
    plugin: str = "MultiProc"


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_pipeline(name_or_path: str) -> PipelineSettings:
    """Read a preset by name (``workflows/NAME.toml``) or a TOML file path."""
    path = Path(name_or_path)
    if not (path.suffix == ".toml" or path.exists()):
        path = PRESET_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise UserInputError(
            f"Pipeline {name_or_path!r} was not found: it is neither a preset "
            f"({', '.join(list_presets())}) nor an existing TOML file. Pass --pipeline with one "
            "of those names or the path to your own TOML file.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"The pipeline file {path} is not valid TOML ({exc}). Fix the "
                             "syntax (see workflows/default.toml for an example).") from None
    values = {}
    for table, content in data.items():
        if not isinstance(content, dict):
            raise UserInputError(f"The pipeline file {path} has a top-level key {table!r}: every "
                                 "setting belongs in a table such as [inversion].")
        for key, value in content.items():
            target = _TOML_KEYS.get((table, key))
            if target is None:
                known = ", ".join(f"[{t}] {k}" for t, k in _TOML_KEYS)
                raise UserInputError(f"The pipeline file {path} has an unknown setting [{table}] "
                                     f"{key}. Known settings: {known}.")
            values[target] = value
    values.setdefault("name", path.stem)
    return validate_pipeline(PipelineSettings(**_coerce(values, path)), path)


def _coerce(values, source):
    types = {f.name: f.type for f in fields(PipelineSettings)}
    out = {}
    for k, v in values.items():
        if k == "l2_lambda" and v == "auto":
            v = None
        elif k == "vsharp_radii_mm":
            v = tuple(float(r) for r in v)
        elif types[k] == "float" and isinstance(v, (int, float)):
            v = float(v)
        out[k] = v
    return out


def validate_pipeline(settings: PipelineSettings, source="the pipeline settings") -> PipelineSettings:
    for key, allowed in _CHOICES.items():
        value = getattr(settings, key)
        if value not in allowed:
            raise UserInputError(f"In {source}, {key} = {value!r} is not available; choose one of "
                                 f"{', '.join(allowed)}.")
    if settings.l2_lambda is not None and not settings.l2_lambda > 0:
        raise UserInputError(f"In {source}, the L2 lambda must be positive or \"auto\".")
    return settings


def with_overrides(settings: PipelineSettings, **overrides) -> PipelineSettings:
    """Apply CLI overrides (``None`` values are ignored)."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    return validate_pipeline(replace(settings, **changes), "the command-line options")
