import qsmprep  # noqa: F401  (sets NIPYPE_NO_ET before anything loads nipype)
