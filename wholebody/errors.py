"""The one exception type for expected user mistakes."""


class DopeError(Exception):
    """An expected user mistake (missing file, bad model...): the CLI prints it on one line."""
