# syntax=docker/dockerfile:1
#
# qsmprep BIDS-App image.
#
#   docker build -t qsmprep:latest --build-arg VERSION=$(python -c "import qsmprep; print(qsmprep.__version__)") .
#   docker run --rm -v /path/bids:/data:ro -v /path/out:/out -v /path/work:/work \
#       qsmprep:latest /data /out participant --participant-label 01 -w /work
#
# Optional DeepQSM (CPU torch, ~200 MB more):  --build-arg WITH_TORCH=1
#
# Two stages: stage 1 installs the few FSL programs qsmprep's FSL-backed paths call
# (BET, PRELUDE) from the official FSL conda channel into a self-contained prefix
# (/opt/fsl, its own shared libraries found through relative rpaths); stage 2 is
# python:3.11-slim with that prefix copied to the same path and qsmprep pip-installed.
# FSL is distributed under the FSL licence (non-commercial use); see $FSLDIR/LICENCE.

ARG PYTHON_VERSION=3.11
ARG MICROMAMBA_TAG=1.5.8

# --------------------------------------------------------------------------- FSL
FROM mambaorg/micromamba:${MICROMAMBA_TAG} AS fsl

USER root
# Package names on https://fsl.fmrib.ox.ac.uk/fsldownloads/fslconda/public/ (the channel
# named in FSL's "Install FSL with conda" page, used together with conda-forge):
#   fsl-bet2      `bet` (the script nipype's fsl.BET calls) and `bet2`
#   fsl-fugue     `prelude` (nipype's fsl.PRELUDE); PRELUDE ships in FUGUE, there is no
#                 separate fsl-prelude package
#   fsl-avwutils  fslmaths / fslstats / fslval / fslhd, called by the `bet` script
#   fsl-base      $FSLDIR/etc/fslconf and share/fsl/sbin/createFSLWrapper
#   fslpy         (conda-forge) imtest / remove_ext / imcp, called by the `bet` script
# The bet2 and fugue pins are the builds of the FSL 6.0.7.x line (as pinned by fMRIPrep);
# override with --build-arg FSL_PACKAGES="..." to move them together.
ARG FSL_PACKAGES="fsl-base fsl-bet2=2111.8 fsl-fugue=2201.5 fsl-avwutils fslpy"
ARG FSL_CHANNEL=https://fsl.fmrib.ox.ac.uk/fsldownloads/fslconda/public/
# The version nipype's fsl.Info.version() reports (first line of $FSLDIR/etc/fslversion,
# which only the full FSL installer writes): the FSL release these packages belong to.
ARG FSL_VERSION=6.0.7
# With these two set, the packages' post-link scripts put wrappers for their commands
# (and only those: no python, pip, tclsh...) in $FSLDIR/share/fsl/bin, the directory
# FSL documents for $PATH.
ENV FSLDIR=/opt/fsl \
    FSL_CREATE_WRAPPER_SCRIPTS=1
RUN micromamba create --yes --prefix "${FSLDIR}" --override-channels \
        --channel "${FSL_CHANNEL}" --channel conda-forge \
        ${FSL_PACKAGES} \
    && micromamba clean --all --yes \
    # make sure every command qsmprep (or the bet script) calls is exposed in share/fsl/bin,
    # even if a post-link script did not run; fail the build if one is missing
    && mkdir -p "${FSLDIR}/share/fsl/bin" \
    && for cmd in bet bet2 prelude fslmaths fslstats fslval fslhd imtest remove_ext imcp; do \
           test -x "${FSLDIR}/bin/${cmd}" || { echo "missing ${FSLDIR}/bin/${cmd}" >&2; exit 1; }; \
           test -e "${FSLDIR}/share/fsl/bin/${cmd}" || ln -s "../../../bin/${cmd}" "${FSLDIR}/share/fsl/bin/${cmd}"; \
       done \
    && { test -s "${FSLDIR}/etc/fslversion" || echo "${FSL_VERSION}" > "${FSLDIR}/etc/fslversion"; } \
    # headers and static libraries are build-only
    && rm -rf "${FSLDIR}/include" \
    && find "${FSLDIR}" -name '*.a' -delete

# --------------------------------------------------------------------------- qsmprep
FROM python:${PYTHON_VERSION}-slim

ARG VERSION=0.1.0
ARG WITH_TORCH=0
LABEL org.opencontainers.image.title="qsmprep" \
      org.opencontainers.image.description="Quantitative susceptibility mapping BIDS-App built on nipype" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT (qsmprep); FSL licence (bundled FSL tools)"

# bc: small, used by some FSL shell scripts; nothing else is needed from apt
RUN apt-get update \
    && apt-get install --yes --no-install-recommends bc \
    && rm -rf /var/lib/apt/lists/*

COPY --from=fsl /opt/fsl /opt/fsl

# FSL: only the wrapper directory goes on PATH, so `python`/`pip` stay the image's own.
# nipype's FSL interfaces read FSLDIR (-> etc/fslversion) and FSLOUTPUTTYPE.
# Threads: one per process by default; qsmprep sizes its FFT workers and nipype n_procs
# itself (QSMPREP_FFT_WORKERS overrides), so BLAS/OpenMP pools would only oversubscribe.
ENV FSLDIR=/opt/fsl \
    FSLOUTPUTTYPE=NIFTI_GZ \
    FSLMULTIFILEQUIT=TRUE \
    PATH=/opt/fsl/share/fsl/bin:${PATH} \
    NIPYPE_NO_ET=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QSMPREP_CONTAINER=docker

# Optional DeepQSM backend: CPU-only torch wheel (the deepqsm extra), before qsmprep so
# pip does not pull the CUDA build.
RUN if [ "${WITH_TORCH}" = "1" ]; then \
        pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.0"; \
    fi

COPY . /src
RUN pip install /src \
    && rm -rf /src \
    # smoke test at build time: CLI, FSL commands on PATH, nipype sees FSL's version
    && qsmprep --version \
    && for c in bet bet2 prelude fslmaths imtest; do command -v "$c" || exit 1; done \
    && python -c "from nipype.interfaces import fsl; v = fsl.Info.version(); assert v, 'nipype cannot see FSL'; print('FSL', v)"

# Non-root user. HOME is world-writable so `docker run -u $(id -u):$(id -g)` (any UID)
# still has a writable home for nipype/matplotlib caches; mount points for data.
RUN useradd --create-home --uid 1000 --shell /bin/bash qsmprep \
    && chmod a+rwx /home/qsmprep \
    && mkdir -p /data /out /work \
    && chmod a+rwx /out /work
ENV HOME=/home/qsmprep
USER qsmprep
WORKDIR /home/qsmprep

ENTRYPOINT ["qsmprep"]
CMD ["--help"]
