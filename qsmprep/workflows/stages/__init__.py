"""One workflow factory per stage: ``init_<stage>_wf(method, params, ...)``.

Each returns a workflow with one ``inputnode`` and one ``outputnode``; it connects what its
method needs (the registry's ``needs``) from the inputnode, so the parent connects every
input it has and the stage takes what it uses. :func:`qsmprep.workflows.qsm.init_qsm_wf`
composes them.
"""

from .background import init_background_wf
from .coils import init_coils_wf
from .fieldmap import init_fieldmap_wf
from .inversion import init_inversion_wf
from .mask import init_mask_wf
from .r2star import init_r2star_wf

__all__ = ["init_background_wf", "init_coils_wf", "init_fieldmap_wf", "init_inversion_wf",
           "init_mask_wf", "init_r2star_wf"]
