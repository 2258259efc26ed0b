"""Training data: talking videos -> curated, speaker-split shards of per-frame arrays (`talkinghead data prepare`).

inputs.py    VIDEOS arguments (files, folders, manifests) -> jobs with speaker ids
analysis.py  decoded frames -> per-frame face measurements (image-mode tracking, shot cuts, blur, pose)
prepare.py   one video -> shot clips with motion, speech features, voice activity; shards + a record
shards.py    the dataset's files: shards, per-video records, the manifest with splits
filters.py   curation thresholds and decisions, the audio-visual offset search
report.py    the curation report: Markdown, JSON and a plot per filter
runner.py    runs the jobs in one process or on Ray
cli.py       the `talkinghead data` subcommand
"""
