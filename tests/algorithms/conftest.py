"""Shared, session-scoped phantoms for the algorithm accuracy tests.

Everything is synthetic (nothing is downloaded): the project's head phantom with its
ground-truth susceptibility, and the fields it produces through the forward model.
Phantoms are small (96 x 112 x 96 at 1.8 mm) so the whole directory runs in well
under a minute on two shared cores.
"""

from __future__ import annotations


import pytest


from qsmprep.algorithms.dipole import forward_field  # noqa: E402
from qsmprep.simulation.phantom import head_phantom  # noqa: E402

from ._support import AXIAL, HEAD_SHAPE, HEAD_VOXEL, TILT20, HeadCase  # noqa: E402


@pytest.fixture(scope="session")
def head_phantom_iso():
    return head_phantom(HEAD_SHAPE, HEAD_VOXEL)


@pytest.fixture(scope="session")
def head_axial(head_phantom_iso):
    ph = head_phantom_iso
    return HeadCase(ph, HEAD_VOXEL, AXIAL,
                    forward_field(ph.chi_brain, HEAD_VOXEL, AXIAL),
                    forward_field(ph.chi, HEAD_VOXEL, AXIAL))


@pytest.fixture(scope="session")
def head_tilted(head_phantom_iso):
    ph = head_phantom_iso
    return HeadCase(ph, HEAD_VOXEL, TILT20,
                    forward_field(ph.chi_brain, HEAD_VOXEL, TILT20),
                    forward_field(ph.chi, HEAD_VOXEL, TILT20))


@pytest.fixture(scope="session")
def head_aniso():
    """Anisotropic voxels (1.6 x 1.6 x 3.2 mm), oblique B0."""
    vs = (1.6, 1.6, 3.2)
    ph = head_phantom((108, 128, 54), vs)
    return HeadCase(ph, vs, TILT20,
                    forward_field(ph.chi_brain, vs, TILT20),
                    forward_field(ph.chi, vs, TILT20))
