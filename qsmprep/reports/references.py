"""Full references for the registry's citation strings (qsmprep/methods.py), for the
methods boilerplate's BibTeX. Keyed by the registry's exact ``citation`` text; a citation
missing here is still cited in the text, and written as a ``@misc`` entry holding it."""

from __future__ import annotations

import re

__all__ = ["REFERENCES", "NIPYPE", "bibtex_entry", "bibtex_for", "cite_key", "split_citations",
           "reference_text"]

# (key, BibTeX type, fields)
NIPYPE = ("gorgolewski2011nipype", "article", {
    "author": "Gorgolewski, Krzysztof and Burns, Christopher D. and Madison, Cindee and "
              "Clark, Dav and Halchenko, Yaroslav O. and Waskom, Michael L. and Ghosh, Satrajit S.",
    "title": "Nipype: a flexible, lightweight and extensible neuroimaging data processing "
             "framework in Python", "journal": "Frontiers in Neuroinformatics", "year": "2011",
    "volume": "5", "pages": "13", "doi": "10.3389/fninf.2011.00013"})

REFERENCES = {
    "Smith, Hum Brain Mapp 2002;17:143-155": ("smith2002bet", "article", {
        "author": "Smith, Stephen M.", "title": "Fast robust automated brain extraction",
        "journal": "Human Brain Mapping", "year": "2002", "volume": "17", "number": "3",
        "pages": "143--155", "doi": "10.1002/hbm.10062"}),
    "Eckstein et al., MRM 2018": ("eckstein2018aspire", "article", {
        "author": "Eckstein, Korbinian and others",
        "title": "Computationally efficient combination of multi-channel phase data from "
                 "multi-echo acquisitions (ASPIRE)",
        "journal": "Magnetic Resonance in Medicine", "year": "2018", "volume": "79",
        "number": "6", "pages": "2996--3006", "doi": "10.1002/mrm.26963"}),
    "Walsh et al., MRM 2000": ("walsh2000adaptive", "article", {
        "author": "Walsh, David O. and Gmitro, Arthur F. and Marcellin, Michael W.",
        "title": "Adaptive reconstruction of phased array MR imagery",
        "journal": "Magnetic Resonance in Medicine", "year": "2000", "volume": "43",
        "number": "5", "pages": "682--690"}),
    "Dymerska et al., MRM 2021": ("dymerska2021romeo", "article", {
        "author": "Dymerska, Barbara and others",
        "title": "Phase unwrapping with a rapid opensource minimum spanning tree algorithm "
                 "(ROMEO)", "journal": "Magnetic Resonance in Medicine", "year": "2021",
        "volume": "85", "number": "4", "pages": "2294--2308", "doi": "10.1002/mrm.28563"}),
    "Schofield & Zhu, Opt Lett 2003": ("schofield2003laplacian", "article", {
        "author": "Schofield, Marvin A. and Zhu, Yimei",
        "title": "Fast phase unwrapping algorithm for interferometric applications",
        "journal": "Optics Letters", "year": "2003", "volume": "28", "number": "14",
        "pages": "1194--1196", "doi": "10.1364/OL.28.001194"}),
    "Jenkinson, MRM 2003": ("jenkinson2003prelude", "article", {
        "author": "Jenkinson, Mark",
        "title": "Fast, automated, N-dimensional phase-unwrapping algorithm",
        "journal": "Magnetic Resonance in Medicine", "year": "2003", "volume": "49",
        "number": "1", "pages": "193--197", "doi": "10.1002/mrm.10354"}),
    "Liu et al., MRM 2013": ("liu2013nonlinear", "article", {
        "author": "Liu, Tian and others",
        "title": "Nonlinear formulation of the magnetic field to source relationship for "
                 "robust quantitative susceptibility mapping",
        "journal": "Magnetic Resonance in Medicine", "year": "2013", "volume": "69",
        "number": "2", "pages": "467--476", "doi": "10.1002/mrm.24272"}),
    "Pei et al., MRM 2015": ("pei2015arlo", "article", {
        "author": "Pei, Mengchao and others",
        "title": "Algorithm for fast monoexponential fitting based on Auto-Regression on "
                 "Linear Operations (ARLO) of data", "journal": "Magnetic Resonance in Medicine",
        "year": "2015", "volume": "73", "number": "2", "pages": "843--850",
        "doi": "10.1002/mrm.25137"}),
    "Liu et al., NMR Biomed 2011": ("liu2011pdf", "article", {
        "author": "Liu, Tian and others",
        "title": "A novel background field removal method for MRI using projection onto "
                 "dipole fields (PDF)", "journal": "NMR in Biomedicine", "year": "2011",
        "volume": "24", "number": "9", "pages": "1129--1136", "doi": "10.1002/nbm.1670"}),
    "Wu et al., MRM 2012": ("wu2012vsharp", "article", {
        "author": "Wu, Bing and Li, Wei and Guidon, Arnaud and Liu, Chunlei",
        "title": "Whole brain susceptibility mapping using compressed sensing",
        "journal": "Magnetic Resonance in Medicine", "year": "2012", "volume": "67",
        "number": "1", "pages": "137--147", "doi": "10.1002/mrm.23000"}),
    "Schweser et al., NeuroImage 2011": ("schweser2011sharp", "article", {
        "author": "Schweser, Ferdinand and Deistung, Andreas and Lehr, Berengar W. and "
                  "Reichenbach, J{\\\"u}rgen R.",
        "title": "Quantitative imaging of intrinsic magnetic tissue properties using MRI "
                 "signal phase: an approach to in vivo brain iron metabolism?",
        "journal": "NeuroImage", "year": "2011", "volume": "54", "number": "4",
        "pages": "2789--2807", "doi": "10.1016/j.neuroimage.2010.10.070"}),
    "Zhou et al., NMR Biomed 2014": ("zhou2014lbv", "article", {
        "author": "Zhou, Dong and Liu, Tian and Spincemaille, Pascal and Wang, Yi",
        "title": "Background field removal by solving the Laplacian boundary value problem",
        "journal": "NMR in Biomedicine", "year": "2014", "volume": "27", "number": "3",
        "pages": "312--319", "doi": "10.1002/nbm.3064"}),
    "Bilgic et al., MRM 2014": ("bilgic2014fast", "article", {
        "author": "Bilgic, Berkin and others",
        "title": "Fast quantitative susceptibility mapping with L1-regularization and "
                 "automatic parameter selection", "journal": "Magnetic Resonance in Medicine",
        "year": "2014", "volume": "72", "number": "5", "pages": "1444--1459",
        "doi": "10.1002/mrm.25029"}),
    "Shmueli et al., MRM 2009": ("shmueli2009tkd", "article", {
        "author": "Shmueli, Karin and others",
        "title": "Magnetic susceptibility mapping of brain tissue in vivo using MRI phase data",
        "journal": "Magnetic Resonance in Medicine", "year": "2009", "volume": "62",
        "number": "6", "pages": "1510--1522", "doi": "10.1002/mrm.22135"}),
    "Gorodnitsky & Rao, IEEE TSP 1997": ("gorodnitsky1997focuss", "article", {
        "author": "Gorodnitsky, Irina F. and Rao, Bhaskar D.",
        "title": "Sparse signal reconstruction from limited data using FOCUSS: a re-weighted "
                 "minimum norm algorithm", "journal": "IEEE Transactions on Signal Processing",
        "year": "1997", "volume": "45", "number": "3", "pages": "600--616",
        "doi": "10.1109/78.558475"}),
    "Bollmann et al., NeuroImage 2019": ("bollmann2019deepqsm", "article", {
        "author": "Bollmann, Steffen and others",
        "title": "DeepQSM - using deep learning to solve the dipole inversion for quantitative "
                 "susceptibility mapping", "journal": "NeuroImage", "year": "2019",
        "volume": "195", "pages": "373--383", "doi": "10.1016/j.neuroimage.2019.03.060"}),
}

# the registry's other spellings of the same papers, and papers cited under a short form
REFERENCES["Bilgic et al. 2014"] = REFERENCES["Bilgic et al., MRM 2014"]
REFERENCES["Dymerska et al., MRM 2021 (phase-coherence quality)"] = \
    REFERENCES["Dymerska et al., MRM 2021"]
# the MEDI paper with the magnitude-gradient prior (NeuroImage, not MRM as the registry says)
REFERENCES["Liu et al., MRM 2012 (MEDI)"] = ("liu2012medi", "article", {
    "author": "Liu, Jing and others",
    "title": "Morphology enabled dipole inversion for quantitative susceptibility mapping using "
             "structural consistency between the magnitude image and the susceptibility map",
    "journal": "NeuroImage", "year": "2012", "volume": "59", "number": "3",
    "pages": "2560--2568", "doi": "10.1016/j.neuroimage.2011.08.082"})
# preconditioned total field inversion (online 2016, in print 2017; the registry says 2018)
REFERENCES["Liu et al., MRM 2018"] = ("liu2017tfi", "article", {
    "author": "Liu, Zhe and others",
    "title": "Preconditioned total field inversion (TFI) method for quantitative susceptibility "
             "mapping", "journal": "Magnetic Resonance in Medicine", "year": "2017",
    "volume": "78", "number": "1", "pages": "303--315", "doi": "10.1002/mrm.26331"})


def split_citations(citation: str) -> list[str]:
    """A registry citation naming several papers (``A; B``) as one string per paper."""
    return [c.strip() for c in re.split(r";\s+(?=[A-Z])", str(citation or "")) if c.strip()]


def reference_text(citation: str) -> str:
    """A readable full reference (authors, title, journal year;volume:pages, doi) of a
    registry citation; the citation itself when it is not in :data:`REFERENCES`."""
    if citation not in REFERENCES and citation != "nipype":
        return citation
    f = (NIPYPE if citation == "nipype" else REFERENCES[citation])[2]
    authors = f["author"].replace(" and others", " et al.").replace(" and ", ", ")
    text = f"{authors}. {f['title']}. {f['journal']} {f['year']};{f.get('volume', '')}"
    text += f":{f['pages'].replace('--', '-')}." if f.get("pages") else "."
    return text + (f" doi:{f['doi']}" if f.get("doi") else "")


def cite_key(citation: str) -> str:
    """The BibTeX key of a registry citation string."""
    if citation in REFERENCES:
        return REFERENCES[citation][0]
    words = re.findall(r"[A-Za-z]+", citation)
    year = re.search(r"(19|20)\d\d", citation)
    return (words[0].lower() if words else "ref") + (year.group(0) if year else "") + "_qsmprep"


def bibtex_entry(key: str, kind: str, fields: dict) -> str:
    body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items())
    return f"@{kind}{{{key},\n{body}\n}}\n"


def bibtex_for(citation: str) -> str:
    """The BibTeX entry of a registry citation (a ``@misc`` holding the text when unknown)."""
    if citation in REFERENCES:
        return bibtex_entry(*REFERENCES[citation])
    return bibtex_entry(cite_key(citation), "misc", {"note": citation})
