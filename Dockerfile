# syntax=docker/dockerfile:1
#
# qsmprep BIDS-App image: one Dockerfile for the published image and the CI image.
#
# Published image (Docker Hub base, FSL BET + PRELUDE from FSL's conda channel, CPU torch):
#   docker build -t qsmprep:0.1.0 --build-arg VERSION=0.1.0 .
# CI image (.ci/container: a debootstrap base, no FSL, torch from a local wheel; podman):
#   podman build --build-arg BASE_IMAGE=localhost/debian:bookworm \
#       --build-arg FSL_BUILDER_IMAGE=localhost/debian:bookworm --build-arg WITH_FSL=0 \
#       --build-arg TORCH_PIP_ARGS=--no-index ...
# Run (any -u UID:GID works; the dataset read-only):
#   docker run --rm -u "$(id -u):$(id -g)" -v /path/bids:/data:ro -v /path/out:/out \
#       -v /scratch/work:/work qsmprep:0.1.0 /data /out participant -w /work
#
# Build arguments
#   BASE_IMAGE         Debian bookworm image the runtime stage starts from (Python 3.11 from
#                      Debian, in a venv at /opt/venv)
#   FSL_BUILDER_IMAGE  image of the FSL stage (micromamba; any image when WITH_FSL=0)
#   WITH_FSL           1: install FSL's bet/prelude (+ the programs the bet script calls) into
#                      /opt/fsl; 0: no FSL (qsmprep then uses its native methods, --fsl auto)
#   TORCH_VERSION      pinned torch, installed before qsmprep (an unpinned torch pulls CUDA)
#   TORCH_PIP_ARGS     where pip finds that torch: the CPU wheel index by default; wheels in a
#                      `wheels/` folder of the build context are always looked at first
# A CA bundle for pip can be passed as the build secret `cacert` (never copied into the image):
#   --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt
# FSL is distributed under the FSL licence (non-commercial use); see /opt/fsl/LICENCE.

ARG BASE_IMAGE=debian:bookworm-slim
ARG FSL_BUILDER_IMAGE=mambaorg/micromamba:1.5.8
ARG WITH_FSL=1

# --------------------------------------------------------------------------- FSL stage
FROM ${FSL_BUILDER_IMAGE} AS fsl
ARG WITH_FSL
# Packages of https://fsl.fmrib.ox.ac.uk/fsldownloads/fslconda/public/ (with conda-forge):
# fsl-bet2 (bet, bet2), fsl-fugue (prelude), fsl-avwutils (fslmaths/fslstats/fslval/fslhd,
# called by bet), fsl-base (etc/fslconf), fslpy (imtest/remove_ext/imcp, called by bet).
ARG FSL_PACKAGES="fsl-base fsl-bet2=2111.8 fsl-fugue=2201.5 fsl-avwutils fslpy"
ARG FSL_CHANNEL=https://fsl.fmrib.ox.ac.uk/fsldownloads/fslconda/public/
ARG FSL_VERSION=6.0.7
# a build-only stage: root to write /opt/fsl (the runtime stage runs as UID 1000)
# hadolint ignore=DL3002
USER 0
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV FSLDIR=/opt/fsl \
    FSL_CREATE_WRAPPER_SCRIPTS=1
RUN if [ "${WITH_FSL}" != "1" ]; then mkdir -p "${FSLDIR}/share/fsl/bin"; exit 0; fi \
    && for attempt in 1 2 3; do \
           micromamba create --yes --prefix "${FSLDIR}" --override-channels \
               --channel "${FSL_CHANNEL}" --channel conda-forge ${FSL_PACKAGES} && break; \
           [ "${attempt}" = 3 ] && exit 1; sleep $((attempt * 10)); \
       done \
    && micromamba clean --all --yes \
    && mkdir -p "${FSLDIR}/share/fsl/bin" \
    && for cmd in bet bet2 prelude fslmaths fslstats fslval fslhd imtest remove_ext imcp; do \
           test -x "${FSLDIR}/bin/${cmd}" || { echo "missing ${FSLDIR}/bin/${cmd}" >&2; exit 1; }; \
           test -e "${FSLDIR}/share/fsl/bin/${cmd}" \
               || ln -s "../../../bin/${cmd}" "${FSLDIR}/share/fsl/bin/${cmd}"; \
       done \
    && { test -s "${FSLDIR}/etc/fslversion" || echo "${FSL_VERSION}" > "${FSLDIR}/etc/fslversion"; } \
    && rm -rf "${FSLDIR}/include" \
    && find "${FSLDIR}" -name '*.a' -delete

# --------------------------------------------------------------------------- qsmprep
FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG WITH_FSL
ARG TORCH_VERSION=2.13.0
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
LABEL org.opencontainers.image.title="qsmprep" \
      org.opencontainers.image.description="Quantitative susceptibility mapping BIDS-App built on nipype" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT (qsmprep); FSL licence (bundled FSL tools, when built with WITH_FSL=1)" \
      org.opencontainers.image.documentation="docs/containers.md"
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Python 3.11 from Debian (venv below); bc for FSL's shell scripts. Debian's security updates
# replace exact versions, so apt packages are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3 python3-venv bc ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

COPY --from=fsl /opt/fsl /opt/fsl

# FSL: only its wrapper directory on PATH. Threads: one per process unless qsmprep sets
# them (--omp-nthreads sizes its FFT workers), so BLAS/OpenMP pools do not oversubscribe.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/opt/fsl/share/fsl/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    FSLDIR=/opt/fsl \
    FSLOUTPUTTYPE=NIFTI_GZ \
    FSLMULTIFILEQUIT=TRUE \
    NIPYPE_NO_ET=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONNOUSERSITE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    PIP_RETRIES=5 \
    MPLCONFIGDIR=/tmp/matplotlib \
    QSMPREP_CONTAINER=docker \
    HOME=/home/qsmprep

# The build context is bind-mounted (nothing of it stays in a layer but the installed
# package). torch first and pinned, then qsmprep with its DeepQSM extra.
# hadolint ignore=DL3013
RUN --mount=type=bind,target=/src,rw \
    --mount=type=secret,id=cacert \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && python3 -m venv "${VIRTUAL_ENV}" \
    && pip install --find-links /src/wheels ${TORCH_PIP_ARGS} "torch==${TORCH_VERSION}" \
    && pip install "/src[deepqsm]" \
    && rm -rf /tmp/* \
    && qsmprep --version \
    && python -c "import torch, qsmprep.interfaces.deepqsm; print('torch', torch.__version__)" \
    && if [ "${WITH_FSL}" = "1" ]; then \
           for c in bet bet2 prelude fslmaths imtest; do command -v "$c" >/dev/null || exit 1; done \
           && python -c "from nipype.interfaces import fsl; assert fsl.Info.version(), 'no FSL'"; \
       fi

# Any UID works: HOME and the default mount points are world-writable (sticky), so
# `-u $(id -u):$(id -g)` has somewhere to put nipype's and matplotlib's small files.
RUN useradd --create-home --uid 1000 --shell /bin/bash qsmprep \
    && chmod 1777 /home/qsmprep \
    && mkdir -p /data /out /work \
    && chmod 1777 /out /work
USER 1000:1000
WORKDIR /home/qsmprep

ENTRYPOINT ["qsmprep"]
CMD ["--help"]
