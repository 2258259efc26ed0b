"""User-facing errors: one line that names the problem and the fix."""


class TalkingHeadError(Exception):
    """A problem with the user's input or setup; the CLI prints it as one line and exits non-zero."""
