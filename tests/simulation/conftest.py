"""Small simulations shared by the simulator tests (3 mm voxels: each takes ~1-2 s)."""


import pytest


from qsmprep.simulation.dataset import SimulationSpec, simulate  # noqa: E402

SMALL = SimulationSpec(shape=(56, 64, 56), voxel_size=(3.0, 3.0, 3.0), scale=0.85,
                       echo_times=(0.005, 0.015, 0.025), snr=None, phase_offset=0.0, seed=4)


@pytest.fixture(scope="session")
def noiseless():
    """Noiseless, no phase offset, axial B0."""
    return simulate(SMALL)


@pytest.fixture(scope="session")
def noisy_oblique():
    """SNR 50, phase offset, B0 tilted by 25 degrees, anisotropic voxels."""
    spec = SimulationSpec(**{**SMALL.__dict__, "voxel_size": (3.0, 3.0, 3.6),
                             "shape": (56, 64, 48), "snr": 50.0, "phase_offset": 1.0,
                             "tilt_deg": 25.0})
    return spec, simulate(spec)
