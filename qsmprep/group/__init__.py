"""The group level: region tables, whole-brain QC and a group report from the participant
outputs (``qsmprep BIDS_DIR OUTPUT_DIR group``). The numbers are pure functions in
:mod:`.stats`; :mod:`.pipeline` reads the files and writes ``OUTPUT_DIR/group/``."""
