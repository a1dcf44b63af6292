"""The run configuration: one frozen dataclass, built only by the CLI.

Built from defaults, then a preset pipeline TOML (``--pipeline NAME|FILE``), then
command-line flags, then ``--fsl`` (:func:`build_pipeline`), and passed down as explicit
arguments: the :class:`Config` is the pipeline that runs. Nothing here is global or
mutable. Stages and methods come from :mod:`qsmprep.methods`.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType

from . import methods as reg
from .algorithms.inversion.lambda_selection import LAMBDA_RULES
from .errors import UserInputError

__all__ = ["PipelineSettings", "Config", "PRESET_DIR", "list_presets", "load_pipeline",
           "with_overrides", "set_params", "build_pipeline", "resolve_fsl_methods",
           "describe_methods", "pipeline_available", "available_variants"]

# presets live in the top-level workflows/ folder; the wheel carries them as package data
_REPO_PRESETS = Path(__file__).resolve().parent.parent / "workflows"
_PKG_PRESETS = Path(__file__).resolve().parent / "data" / "pipelines"
PRESET_DIR = _REPO_PRESETS if _REPO_PRESETS.is_dir() else _PKG_PRESETS


def _default_methods():
    return MappingProxyType({s.name: s.default for s in reg.STAGES})


def _default_params():
    return MappingProxyType({(m.stage, m.name): m.params() for m in reg.METHODS})


@dataclass(frozen=True)
class PipelineSettings:
    """The method of every stage and the parameters of every method (one preset TOML).

    ``methods``: stage -> method name; ``params``: (stage, method) -> that method's frozen
    parameter dataclass, for every method (so that switching a stage's method with a flag
    keeps what the TOML set for it). Use :meth:`method` and :meth:`params_of`.
    """

    name: str = "default"
    description: str = ""
    methods: MappingProxyType = field(default_factory=_default_methods, hash=False)
    params: MappingProxyType = field(default_factory=_default_params, hash=False, repr=False)

    def method(self, stage: str) -> str:
        return self.methods[stage]

    def params_of(self, stage: str, method: str | None = None):
        return self.params[(stage, method or self.methods[stage])]

    def with_method(self, stage: str, method: str) -> "PipelineSettings":
        return replace(self, methods=MappingProxyType({**self.methods, stage: method}))

    def with_params(self, stage: str, method: str, **changes) -> "PipelineSettings":
        key = (stage, method)
        return replace(self, params=MappingProxyType(
            {**self.params, key: replace(self.params[key], **changes)}))

    @property
    def uses_background_step(self) -> bool:
        """Total-field inversions (tfi, preconditioned) do their own background handling."""
        return reg.method("inversion", self.methods["inversion"]).consumes != "total_field"


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
    pipeline: PipelineSettings = PipelineSettings()  # FSL methods resolved: what runs
    pipeline_notes: tuple = ()  # one line per --fsl substitution, for the console and log
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
    plugin: str = "MultiProc"
    plugin_args: dict = field(default_factory=dict, hash=False)  # --plugin-args/--sbatch-args
    fsl: str = "auto"
    device: str = "cpu"
    user_mask: str | None = None  # path pattern with {subject} {session} {acquisition} {run}
    phase_units: str = "auto"  # --phase-units: auto, radians, degrees, integer


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def _known_settings() -> str:
    out = ["[pipeline] name", "[pipeline] description"]
    for st in reg.STAGES:
        out.append(f"[{st.name}] method")
        for m in reg.methods_of(st.name):
            out += [f"[{st.name}.{m.name}] {f.name}" for f in fields(m.params)]
    return ", ".join(out)


def load_pipeline(name_or_path: str) -> PipelineSettings:
    """Read a preset by name (``workflows/NAME.toml``) or a TOML file path.

    Tables: ``[pipeline]`` (name, description) and one per stage with its ``method`` and,
    in a sub-table per method (``[background.pdf]``), that method's parameters; a parameter
    written in the stage table itself applies to the stage's chosen method.
    """
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
    settings = PipelineSettings(name=path.stem)

    def unknown(where):
        return UserInputError(f"The pipeline file {path} has an unknown setting {where}. Known "
                              f"settings: {_known_settings()}.")

    stage_names = {st.name for st in reg.STAGES}
    for table, content in data.items():
        if not isinstance(content, dict):
            raise UserInputError(f"The pipeline file {path} has a top-level key {table!r}: every "
                                 "setting belongs in a table such as [inversion].")
        if table == "pipeline":
            for key, value in content.items():
                if key not in ("name", "description") or not isinstance(value, str):
                    raise unknown(f"[pipeline] {key}")
                settings = replace(settings, **{key: value})
            continue
        if table not in stage_names:
            raise unknown(f"[{table}]")
        if "method" in content:
            method = content["method"]
            if method not in reg.names(table):
                raise UserInputError(
                    f"In {path}, [{table}] method = {method!r} is not available; choose one "
                    f"of {', '.join(reg.names(table))}.")
            settings = settings.with_method(table, method)
        for key, value in content.items():
            if key == "method":
                continue
            if isinstance(value, dict):
                if key not in reg.names(table):
                    raise unknown(f"[{table}.{key}]")
                settings = set_params(settings, table, key, value, path)
            else:
                settings = set_params(settings, table, settings.method(table), {key: value},
                                       path)
    return validate_pipeline(settings, path)


def set_params(settings, stage, method, values, source):
    """``settings`` with ``values`` (TOML or command-line values, coerced to the parameter
    types) set on ``method`` of ``stage``; unknown keys are refused, naming ``source``."""
    m = reg.method(stage, method)
    known = {f.name: f for f in fields(m.params)}
    changes = {}
    for key, value in values.items():
        f = known.get(key)
        if f is None:
            names = ", ".join(known) or "none"
            raise UserInputError(
                f"In {source}, [{stage}] {key} is not a parameter of the {stage} method "
                f"{method!r} (its parameters: {names}). Put it in the table of the method it "
                f"belongs to, e.g. [{stage}.<method>].")
        changes[key] = _coerce(f, value, f"[{stage}.{method}] {key}", source)
    return settings.with_params(stage, method, **changes)


def _coerce(f, value, name, source):
    default = f.default
    if f.metadata.get("auto") and (value is None or value == "auto"):
        return None
    if isinstance(default, bool) or f.type in ("bool",):
        ok = isinstance(value, bool)
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        value = tuple(float(v) for v in value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, int) and f.type in ("int",):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:  # float (or auto float)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    if not ok:
        want = "\"auto\" or a number" if f.metadata.get("auto") else type(default).__name__
        raise UserInputError(f"In {source}, {name} = {value!r} should be {want}.")
    return value


def validate_pipeline(settings: PipelineSettings, source="the pipeline settings",
                      flags: dict | None = None) -> PipelineSettings:
    """Refuse unknown methods and non-finite, negative or out-of-range numbers, naming the
    setting (TOML ``[stage.method] key``, or the flag for command-line values in ``flags``:
    (stage, method, key) -> flag) and where it came from. Nothing runs before this passes."""
    for st in reg.STAGES:
        if settings.method(st.name) not in reg.names(st.name):
            raise UserInputError(f"In {source}, [{st.name}] method = "
                                 f"{settings.method(st.name)!r} is not available; choose one of "
                                 f"{', '.join(reg.names(st.name))}.")
    for (stage, method), params in settings.params.items():
        for key, value, meta in reg.params_table(params):
            if key == "lambda_rule" and value not in LAMBDA_RULES:
                raise UserInputError(f"In {source}, [{stage}.{method}] lambda_rule = {value!r} "
                                     f"is not a rule; choose one of {', '.join(LAMBDA_RULES)}.")
            values = value if isinstance(value, tuple) else (value,)
            for v in values:
                if v is None or isinstance(v, (bool, str)):
                    continue
                low, low_ok, high = meta.get("low"), meta.get("low_ok", True), meta.get("high")
                low = 0 if low is None else low
                if not math.isfinite(v) or v < low or (v == low and not low_ok) or (
                        high is not None and v > high):
                    want = "integer" if isinstance(v, int) else "number"
                    rng = (f"{'>=' if low_ok else '>'} {low:g}"
                           + (f" and <= {high:g}" if high is not None else ""))
                    flag = (flags or {}).get((stage, method, key))
                    where = (f"The command-line option {flag}" if flag else
                             f"[{stage}.{method}] {key} in {source}")
                    raise UserInputError(
                        f"{where} is {v!r}; it must be a finite {want} {rng}. Nothing was run: "
                        f"fix {'the flag' if flag else 'the setting'} (workflows/default.toml "
                        "lists the defaults).")
    return settings



def with_overrides(settings: PipelineSettings, methods: dict | None = None,
                   lam: float | None = None) -> PipelineSettings:
    """Apply command-line overrides: ``methods`` stage -> method (``None`` ignored), then
    ``--lambda`` on the chosen inversion method (which must have a lambda)."""
    changed = []
    for stage, method in (methods or {}).items():
        if method is not None and method != settings.method(stage):
            settings = settings.with_method(stage, method)
            changed.append(f"{stage}={method}")
    if lam is not None:
        changed.append(f"lambda={lam:g}")
    if changed:  # the sidecars' Pipeline names what ran, not only the preset
        settings = replace(settings, name=f"{settings.name}+{'+'.join(changed)}")
    flags = {}
    if lam is not None:
        inv = settings.method("inversion")
        if "lam" not in {f.name for f in fields(reg.method("inversion", inv).params)}:
            raise UserInputError(f"--lambda was given but the inversion {inv!r} has no lambda; "
                                 "leave it out or choose an inversion with one (l2, cg, focuss, "
                                 "tv, tfi, preconditioned).")
        settings = settings.with_params("inversion", inv, lam=float(lam))
        flags[("inversion", inv, "lam")] = "--lambda"
    return validate_pipeline(settings, "the command-line options", flags)


def resolve_fsl_methods(settings: PipelineSettings, fsl_mode: str):
    """Apply ``--fsl auto|require|never`` to the pipeline's FSL-backed methods.

    ``require``: every stage with an FSL method uses it (BET, PRELUDE), and a missing FSL
    stops the run with a message saying how to get it. ``auto``: a pipeline that names an
    FSL method gets it when FSL is installed, else the method's native ``fallback``.
    ``never``: always the native method. Returns ``(settings, notes)``, the notes being
    one line per substitution, for the log and the console.
    """
    from .fsl import resolve_fsl

    notes = []
    for m in reg.METHODS:
        if not m.requires.startswith("fsl:"):
            continue
        if fsl_mode == "require":
            resolve_fsl("require", m.name)  # raises when missing
            settings = settings.with_method(m.stage, m.name)
        elif settings.method(m.stage) == m.name and not resolve_fsl(fsl_mode, m.name):
            settings = settings.with_method(m.stage, m.fallback)
            why = "--fsl never" if fsl_mode == "never" else "FSL is not installed"
            notes.append(f"{m.stage}: {m.name} replaced by the native {m.fallback} ({why})")
    return settings, notes


def build_pipeline(name_or_path: str, methods: dict | None = None, lam: float | None = None,
                   fsl_mode: str = "auto"):
    """The pipeline that runs: preset or file, flags, then ``--fsl``; ``(settings, notes)``.

    A method whose requirement is missing here (torch for DeepQSM) stops the run now, with
    the fix, instead of failing in the middle of it."""
    settings, notes = resolve_fsl_methods(
        with_overrides(load_pipeline(name_or_path), methods, lam), fsl_mode)
    for st in reg.STAGES:
        m = reg.method(st.name, settings.method(st.name))
        if m.requires == "torch" and not reg.available(m):
            raise UserInputError(
                f"The {st.name} method {m.name!r} (pipeline {settings.name!r}) needs PyTorch, "
                "which is not installed. Install it with `pip install \"torch==2.13.0\"` then "
                "`pip install \".[deepqsm]\"` (or `pip install \"qsmprep[deepqsm]\"`), or choose "
                f"another method with {st.flag}.")
    return settings, notes


def describe_methods(settings: PipelineSettings) -> str:
    """One line naming the method of every stage (console, log and report)."""
    parts = []
    for st in reg.STAGES:
        if st.name == "coils" or (st.name == "background" and not settings.uses_background_step):
            continue
        parts.append(f"{st.title} {settings.method(st.name)}")
    return ", ".join(parts) + f" (uncombined channels: {settings.method('coils')})"


def pipeline_available(settings: PipelineSettings) -> bool:
    """Whether every method of ``settings`` can run here (FSL ones fall back, see
    :func:`resolve_fsl_methods`)."""
    return all(reg.available(reg.method(st.name, settings.method(st.name)))
               for st in reg.STAGES if not reg.method(st.name, settings.method(st.name)).fallback)


# stages whose method changes the susceptibility map (coils only matter for uncombined data;
# R2* is a separate output)
_VARIANT_STAGES = ("mask", "unwrap", "echoes", "phase_offset", "background", "inversion")


def available_variants(base: PipelineSettings):
    """``(label, settings)`` for every available method differing from ``base``, one stage
    at a time (the accuracy scorecard and the method tests run them)."""
    out = []
    for stage in _VARIANT_STAGES:
        if stage == "background" and not base.uses_background_step:
            continue
        for m in reg.methods_of(stage):
            if m.name != base.method(stage) and reg.available(m):
                out.append((f"{stage}={m.name}", base.with_method(stage, m.name)))
    return out
