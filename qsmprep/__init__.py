"""qsmprep: a BIDS-App for quantitative susceptibility mapping."""

import os

# nipype's network check (etelemetry) is never run: the one place this is set, before any
# qsmprep module imports nipype
os.environ.setdefault("NIPYPE_NO_ET", "1")

__version__ = "0.1.0"
