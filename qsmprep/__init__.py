"""qsmprep: a BIDS-App for quantitative susceptibility mapping."""

__version__ = "0.1.0"
