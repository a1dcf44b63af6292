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

__all__ = ["PipelineSettings", "Config", "PRESET_DIR", "list_presets", "load_pipeline",
           "resolve_fsl_methods", "method_available", "pipeline_available", "available_variants"]

# presets live in the top-level workflows/ folder; the wheel carries them as package data
_REPO_PRESETS = Path(__file__).resolve().parent.parent / "workflows"
_PKG_PRESETS = Path(__file__).resolve().parent / "data" / "pipelines"
PRESET_DIR = _REPO_PRESETS if _REPO_PRESETS.is_dir() else _PKG_PRESETS


@dataclass(frozen=True)
class PipelineSettings:
    """Method choices and parameters of one pipeline (one preset TOML)."""

    name: str = "default"
    description: str = ""
    coil_method: str = "auto"
    coil_poly_order: int = 2
    mask_method: str = "bet"
    mask_open_mm: float = 4.0
    mask_erode_mm: float = 0.0
    mask_quality_threshold: float = 0.9
    bet_frac: float = 0.5
    bet_d1_mm: float = 20.0
    bet_d2_mm: float = 10.0
    bet_iterations: int = 1000
    unwrap_method: str = "temporal"
    romeo_template_echo: int = 2
    echo_fit: str = "linear"
    phase_offset: str = "fit"
    consistency_mask: bool = True
    r2star_method: str = "arlo"
    background_method: str = "pdf"
    vsharp_radii_mm: tuple = ()
    vsharp_threshold: float = 0.05
    sharp_radius_mm: float = 6.0
    pdf_max_iter: int = 50
    inversion_method: str = "tv"
    l2_lambda: float | None = None
    lambda_rule: str = "upre"
    tkd_threshold: float = 0.19
    cg_max_iter: int = 80

    @property
    def uses_background_step(self) -> bool:
        """Total-field methods (tfi, preconditioned) do their own background handling."""
        return self.inversion_method not in TOTAL_FIELD_METHODS


# inversion methods that take the total field and need no separate background step
TOTAL_FIELD_METHODS = ("tfi", "preconditioned")

CHOICES = {
    "coil_method": ("auto", "bodycoil", "mcpc3ds", "adaptive"),
    "mask_method": ("bet", "fsl_bet", "phase_quality", "magnitude"),
    "unwrap_method": ("temporal", "laplacian", "romeo", "prelude"),
    "echo_fit": ("linear", "nonlinear"),
    "phase_offset": ("fit", "mcpc3ds"),
    "r2star_method": ("arlo", "loglinear"),
    "background_method": ("pdf", "vsharp", "sharp"),
    "inversion_method": ("l2", "tkd", "cg", "focuss", "tv", "tfi", "preconditioned", "deepqsm"),
    "lambda_rule": ("upre", "gcv", "lcurve"),
}

# methods that run an FSL program, and the native method used instead when FSL is absent
# under --fsl auto / never
FSL_METHODS = {"mask_method": ("fsl_bet", "bet"), "unwrap_method": ("prelude", "romeo")}

# TOML table/key -> PipelineSettings field
_TOML_KEYS = {
    ("pipeline", "name"): "name",
    ("pipeline", "description"): "description",
    ("coils", "method"): "coil_method",
    ("coils", "poly_order"): "coil_poly_order",
    ("mask", "method"): "mask_method",
    ("mask", "open_mm"): "mask_open_mm",
    ("mask", "erode_mm"): "mask_erode_mm",
    ("mask", "quality_threshold"): "mask_quality_threshold",
    ("mask", "bet_frac"): "bet_frac",
    ("mask", "bet_d1_mm"): "bet_d1_mm",
    ("mask", "bet_d2_mm"): "bet_d2_mm",
    ("mask", "bet_iterations"): "bet_iterations",
    ("unwrap", "method"): "unwrap_method",
    ("unwrap", "template_echo"): "romeo_template_echo",
    ("echoes", "fit"): "echo_fit",
    ("echoes", "consistency_mask"): "consistency_mask",
    ("echoes", "phase_offset"): "phase_offset",
    ("echoes", "r2star_method"): "r2star_method",
    ("background", "method"): "background_method",
    ("background", "vsharp_radii_mm"): "vsharp_radii_mm",
    ("background", "vsharp_threshold"): "vsharp_threshold",
    ("background", "sharp_radius_mm"): "sharp_radius_mm",
    ("background", "pdf_max_iter"): "pdf_max_iter",
    ("inversion", "method"): "inversion_method",
    ("inversion", "lambda"): "l2_lambda",
    ("inversion", "lambda_rule"): "lambda_rule",
    ("inversion", "tkd_threshold"): "tkd_threshold",
    ("inversion", "cg_max_iter"): "cg_max_iter",
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
    fsl: str = "auto"
    device: str = "cpu"
    user_mask: str | None = None  # path pattern with {subject} {session} {acquisition} {run}
    phase_units: str = "auto"  # --phase-units: auto, radians, degrees, integer


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


_PY_TYPES = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,)}


def _coerce(values, source):
    types = {f.name: f.type for f in fields(PipelineSettings)}
    out = {}
    for k, v in values.items():
        want = _PY_TYPES.get(types[k])
        if want and (not isinstance(v, want) or (isinstance(v, bool) and bool not in want)):
            if not (k == "l2_lambda" and v == "auto"):
                raise UserInputError(f"In {source}, {k} = {v!r} should be of type {types[k]}.")
        if k == "l2_lambda" and v == "auto":
            v = None
        elif k == "vsharp_radii_mm":
            v = tuple(float(r) for r in v)
        elif types[k] == "float" and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = float(v)
        out[k] = v
    return out


# numeric settings: (lowest value, whether the lowest itself is allowed, highest or None);
# all must be finite. The others (none today) need only be finite and >= 0.
_NUMERIC_LIMITS = {
    "coil_poly_order": (0, True, 6), "mask_open_mm": (0, True, None),
    "mask_erode_mm": (0, True, None), "mask_quality_threshold": (0, True, 1),
    "bet_frac": (0, False, 1), "bet_d1_mm": (0, False, None), "bet_d2_mm": (0, False, None),
    "bet_iterations": (1, True, None), "romeo_template_echo": (1, True, None),
    "vsharp_radii_mm": (0, False, None), "vsharp_threshold": (0, False, 1),
    "sharp_radius_mm": (0, False, None), "pdf_max_iter": (1, True, None),
    "l2_lambda": (0, False, None), "tkd_threshold": (0, False, 1), "cg_max_iter": (1, True, None),
}
# the command-line flag of each numeric setting that has one
_FLAGS = {"l2_lambda": "--lambda"}


def _setting_name(key: str, cli: bool) -> str:
    if cli and key in _FLAGS:
        return _FLAGS[key]
    table, name = next(tk for tk, f in _TOML_KEYS.items() if f == key)
    return f"[{table}] {name}"


def _check_numbers(settings: PipelineSettings, source, cli: bool = False) -> None:
    """Refuse non-finite, negative or out-of-range numeric settings, naming the key (TOML
    ``[table] key``, or the flag for command-line values) and where it came from."""
    import math

    for f in fields(PipelineSettings):
        value = getattr(settings, f.name)
        if value is None or isinstance(value, (bool, str)):
            continue
        values = value if isinstance(value, tuple) else (value,)
        low, low_ok, high = _NUMERIC_LIMITS.get(f.name, (0, True, None))
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            bad = (not math.isfinite(v) or v < low or (v == low and not low_ok)
                   or (high is not None and v > high))
            if bad:
                want = "integer" if f.type == "int" else "number"
                rng = (f"{'>=' if low_ok else '>'} {low:g}"
                       + (f" and <= {high:g}" if high is not None else ""))
                flag = cli and f.name in _FLAGS
                name = _setting_name(f.name, cli)
                where = f"The command-line option {name}" if flag else f"{name} in {source}"
                raise UserInputError(
                    f"{where} is {v!r}; it must be a finite {want} {rng}. Nothing was run: "
                    f"fix {'the flag' if flag else 'the setting'} (workflows/default.toml "
                    "lists the defaults).")


def validate_pipeline(settings: PipelineSettings, source="the pipeline settings",
                      cli: bool = False) -> PipelineSettings:
    _check_numbers(settings, source, cli)
    for key, allowed in CHOICES.items():
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
    return validate_pipeline(replace(settings, **changes), "the command-line options", cli=True)


def resolve_fsl_methods(settings: PipelineSettings, fsl_mode: str):
    """Apply ``--fsl auto|require|never`` to the pipeline's FSL-backed methods.

    ``require``: the mask is made by BET and the phase unwrapped by PRELUDE, and a missing
    FSL stops the run with a message saying how to get it. ``auto``: a pipeline that names
    ``fsl_bet``/``prelude`` gets them when FSL is installed, else the native method listed in
    :data:`FSL_METHODS`. ``never``: always the native method. Returns ``(settings, notes)``,
    the notes being one line per substitution, for the log and the console.
    """
    from .fsl import resolve_fsl

    changes, notes = {}, []
    for key, (fsl_method, native) in FSL_METHODS.items():
        asked = getattr(settings, key)
        if fsl_mode == "require":
            resolve_fsl("require", fsl_method)  # raises when missing
            changes[key] = fsl_method
        elif asked == fsl_method and not resolve_fsl(fsl_mode, fsl_method):
            changes[key] = native
            why = "--fsl never" if fsl_mode == "never" else "FSL is not installed"
            notes.append(f"{key.split('_')[0]}: {fsl_method} replaced by the native {native} "
                         f"({why})")
    return (replace(settings, **changes) if changes else settings), notes


def describe_methods(settings: PipelineSettings) -> str:
    """One line naming the method of every stage (console and log)."""
    p = settings
    stages = [f"mask {p.mask_method}", f"phase offset {p.phase_offset}",
              f"unwrap {p.unwrap_method}", f"fit {p.echo_fit}",
              f"R2* {p.r2star_method}"]
    if p.uses_background_step:
        stages.append(f"background {p.background_method}")
    stages.append(f"inversion {p.inversion_method}")
    return ", ".join(stages) + f" (uncombined channels: {p.coil_method})"


def method_available(key: str, method: str) -> bool:
    """Whether ``method`` of stage ``key`` can run here (FSL installed, torch importable)."""
    if key in FSL_METHODS and method == FSL_METHODS[key][0]:
        from .fsl import FSL_PROGRAMS, fsl_available

        return fsl_available((FSL_PROGRAMS[method],))
    if method == "deepqsm":
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    return True


def pipeline_available(settings: PipelineSettings) -> bool:
    """Whether every method of ``settings`` can run here (FSL ones fall back, see
    :func:`resolve_fsl_methods`)."""
    return all(method_available(k, getattr(settings, k)) for k in CHOICES
               if k not in FSL_METHODS)


# stages whose method changes the susceptibility map (coils only matter for uncombined data)
_VARIANT_KEYS = ("mask_method", "unwrap_method", "echo_fit", "phase_offset", "background_method",
                 "inversion_method")


def available_variants(base: PipelineSettings):
    """``(label, {field: method})`` for every available method differing from ``base``,
    one stage at a time (the accuracy scorecard runs them)."""
    out = []
    for key in _VARIANT_KEYS:
        if key == "background_method" and not base.uses_background_step:
            continue
        for method in CHOICES[key]:
            if method != getattr(base, key) and method_available(key, method):
                out.append((f"{key.split('_')[0]}={method}", {key: method}))
    return out
