"""The methods paragraph ("boilerplate") of the pipeline that ran, with its references.

Built from a run record (record.py) and the registry (qsmprep/methods.py): only the
methods that ran for the recorded runs are named (the coil combination only for
uncombined channels, with ``auto`` resolved; the R2* method the echoes allowed; background
removal only for local-field inversions; the user's masks instead of the mask method).
Written as ``OUTPUT_DIR/logs/CITATION.md``, ``.html`` and ``.bib`` as fMRIPrep does.
"""

from __future__ import annotations

import html
from pathlib import Path

from .. import methods as reg
from .references import (NIPYPE, bibtex_entry, bibtex_for, cite_key, reference_text,
                         split_citations)

__all__ = ["methods_that_ran", "methods_paragraph", "write_citation_files"]


def _r2star_method(echo_times, preferred):
    from ..workflows.qsm import r2star_method_for

    return r2star_method_for(echo_times, preferred)


def methods_that_ran(record: dict) -> list[tuple[str, str]]:
    """``[(stage, method)]`` in pipeline order, over every run of the record; the mask is
    ``("mask", "user")`` when ``--mask`` gave the masks."""
    stages = record["Pipeline"]["stages"]
    runs = record.get("Runs") or []
    ran = []

    def add(stage, name):
        if name and (stage, name) not in ran:
            ran.append((stage, name))

    for run in runs:
        coils = stages["coils"]["method"]
        if run.get("n_channels", 1) > 1:
            if coils == "auto":
                coils = "bodycoil" if run.get("body_magnitude") else "mcpc3ds"
            add("coils", coils)
        add("mask", "user" if record["Settings"].get("user_mask") else stages["mask"]["method"])
        for st in ("phase_offset", "unwrap", "echoes"):
            add(st, stages[st]["method"])
        add("r2star", _r2star_method(run["echo_times"], stages["r2star"]["method"]))
        if record["Pipeline"].get("uses_background_step", True):
            add("background", stages["background"]["method"])
        add("inversion", stages["inversion"]["method"])
    order = [s.name for s in reg.STAGES]
    return sorted(ran, key=lambda sm: order.index(sm[0]))


_SENTENCES = {
    "coils": "The uncombined receive-channel images were combined by {m}{c}.",
    "mask": "A brain mask was computed by {m}{c}.",
    "phase_offset": "The echoes' common phase offset was taken as {m}{c}.",
    "unwrap": "The phase was unwrapped by {m}{c}.",
    "echoes": "The total field was estimated from all echoes by a {m}{c}.",
    "r2star": "R2* and T2* maps were computed from the magnitude by {m}{c}.",
    "background": "Background fields were removed from the total field by {m}{c}.",
    "inversion": "The {f} field was inverted to magnetic susceptibility by {m}{c}{lam}.",
}


def _lambda_note(record, stage_params) -> str:
    lam = stage_params.get("lam") if isinstance(stage_params, dict) else None
    if lam is not None:
        return f", with a fixed regularisation weight lambda = {lam:g}"
    rule = stage_params.get("lambda_rule") if isinstance(stage_params, dict) else None
    return f", its regularisation weight chosen automatically per run ({rule.upper()})" \
        if rule else ", its regularisation weight chosen automatically per run"


def methods_paragraph(record: dict):
    """``(paragraphs, references)``: the text as a list of paragraphs whose citations are
    ``[n]`` markers, and ``[(n, citation, key)]`` in order of first citation."""
    refs: list[tuple[str, str]] = []  # (citation text, key)

    def cite(citation) -> str:
        nums = []
        for c in split_citations(citation):
            key = cite_key(c)
            if key not in [k for _, k in refs]:
                refs.append((c, key))
            nums.append(str([k for _, k in refs].index(key) + 1))
        return f" [{', '.join(dict.fromkeys(nums))}]" if nums else ""

    sw = record.get("Software", {})
    runs = record.get("Runs") or []
    ver = ", ".join(f"{name} {sw[k]}" for k, name in (("numpy", "NumPy"), ("scipy", "SciPy"),
                                                      ("nibabel", "NiBabel")) if k in sw)
    refs.append(("nipype", NIPYPE[0]))
    intro = (f"Quantitative susceptibility maps were computed with qsmprep "
             f"{record.get('QsmprepVersion', '')}, which is based on Nipype "
             f"{sw.get('nipype', '')} [1] (Python {sw.get('python', '')}; {ver}). ")
    echoes = sorted({len(r["echo_times"]) for r in runs})
    b0 = sorted({round(r["field_strength"], 3) for r in runs})
    intro += (f"{len(runs)} gradient-echo run(s) with {'/'.join(map(str, echoes))} echo(es) "
              f"at {'/'.join(f'{b:g}' for b in b0)} T were processed; the field strength was "
              "taken from the sidecars' " + "/".join(sorted({r['field_strength_source']
                                                              for r in runs})) + ".")
    body = []
    stages = record["Pipeline"]["stages"]
    for stage, name in methods_that_ran(record):
        if (stage, name) == ("mask", "user"):
            body.append("The brain masks were provided by the user (--mask).")
            continue
        m = reg.method(stage, name)
        extra = {"f": "total" if m.consumes == "total_field" else "local", "lam": ""}
        if stage == "inversion" and m.lambda_convention:
            extra["lam"] = _lambda_note(record, stages[stage].get("params") or {})
        body.append(_SENTENCES[stage].format(m=f"{m.summary} (qsmprep method '{m.name}')",
                                             c=cite(m.citation), **extra))
    body.append("Susceptibility is reported in ppm, referenced to the mean inside the mask "
                "where it is defined.")
    closing = ("This text was generated automatically by qsmprep from the pipeline that ran, "
               "so that it can be copied into a manuscript unchanged; please cite the papers "
               "it names.")
    numbered = [(i + 1, c, k) for i, (c, k) in enumerate(refs)]
    return [intro, " ".join(body), closing], numbered


def write_citation_files(output_dir, record: dict) -> list[Path]:
    """``OUTPUT_DIR/logs/CITATION.md``, ``CITATION.html`` and ``CITATION.bib``."""
    from ..bids.derivatives import _write_atomically

    paragraphs, refs = methods_paragraph(record)
    logs = Path(output_dir) / "logs"
    md = "# Methods\n\n" + "\n\n".join(paragraphs) + "\n\n## References\n\n"
    md += "".join(f"{n}. {reference_text(c)} (`{k}` in CITATION.bib)\n" for n, c, k in refs)
    bib = bibtex_entry(*NIPYPE) + "".join("\n" + bibtex_for(c) for _, c, _ in refs[1:])
    out = [_write_atomically(logs / "CITATION.md", lambda t: t.write_text(md, encoding="utf-8")),
           _write_atomically(logs / "CITATION.bib", lambda t: t.write_text(bib, encoding="utf-8"))]
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qsmprep "
            "methods</title></head><body>\n" + methods_html(paragraphs, refs) + "</body></html>\n")
    out.append(_write_atomically(logs / "CITATION.html",
                                 lambda t: t.write_text(page, encoding="utf-8")))
    return out


def methods_html(paragraphs, refs) -> str:
    """The paragraphs and the numbered references as an HTML fragment."""
    text = "".join(f"<p>{html.escape(p)}</p>\n" for p in paragraphs)
    items = "".join(f"<li>{html.escape(reference_text(c))} <code>{html.escape(k)}</code></li>\n"
                    for _, c, k in refs)
    return f"<h2>Methods</h2>\n{text}<h3>References</h3>\n<ol>\n{items}</ol>\n"
