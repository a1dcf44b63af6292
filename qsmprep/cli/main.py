"""Console entry point: ``qsmprep BIDS_DIR OUTPUT_DIR participant [options]`` and ``qsmprep demo``."""

from __future__ import annotations

import sys
from pathlib import Path

from .messages import fill_message



def _fail(message: str) -> int:
    print("qsmprep: error: " + fill_message(message), file=sys.stderr)
    return 2


def build_config(args):
    """The one place a :class:`qsmprep.config.Config` is made from flags."""
    from .. import methods
    from ..bids import load_bids_filters
    from ..config import Config, build_pipeline
    from .plugins import plugin_args_from_flags

    pipeline, notes = build_pipeline(
        args.pipeline, {st.name: getattr(args, f"method_{st.name}") for st in methods.STAGES},
        args.lam, args.fsl)
    omp = args.omp_nthreads or max(1, min(args.nprocs, 8))
    return Config(
        bids_dir=args.bids_dir.resolve(), output_dir=args.output_dir.resolve(),
        work_dir=(args.work_dir or Path.cwd() / "work").resolve(),
        analysis_level=args.analysis_level, participant_labels=tuple(args.participant_label),
        session_labels=tuple(args.session_label),
        bids_filters=load_bids_filters(args.bids_filter_file) if args.bids_filter_file else {},
        pipeline=pipeline, pipeline_notes=tuple(notes), nprocs=args.nprocs, omp_nthreads=omp,
        mem_gb=args.mem_gb,
        plugin=args.plugin,
        plugin_args=plugin_args_from_flags(args.plugin, args.plugin_args, args.sbatch_args),
        fsl=args.fsl, device=args.device, user_mask=args.user_mask,
        phase_units=args.phase_units)


# ``qsmprep NAME ...`` -> module ``qsmprep.cli.<module>``, whose ``main(argv) -> int`` parses
# the remaining arguments itself and raises UserInputError for mistakes a user can make.
SUBCOMMANDS = {
    "demo": "demo",
    "simulate": "simulate",
    "evaluate": "evaluate",
    "train-deepqsm": "train_deepqsm",
    "stage": "stage",
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from ..errors import UserInputError
    from .parser import build_parser

    try:
        if argv and argv[0] in SUBCOMMANDS:
            import importlib

            module = importlib.import_module(f".{SUBCOMMANDS[argv[0]]}", __package__)
            return module.main(argv[1:])
        args = build_parser().parse_args(argv)
        from .group import check_participant_args, run_group_level

        if args.analysis_level == "group":
            return run_group_level(args)
        check_participant_args(args)
        if args.reports_only:
            from ..reports.participant import reports_only

            return reports_only(args.output_dir, args.participant_label, args.work_dir)
        from .run import run_participant

        return run_participant(build_config(args))
    except UserInputError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted; re-run with the same --work-dir to resume where it stopped.")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
