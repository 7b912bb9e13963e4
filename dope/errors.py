"""The one exception type for expected user mistakes."""


class DopeError(Exception):
    """An expected user mistake (missing file, bad model...): the CLI prints it on one line."""


class InputError(DopeError):
    """One input that cannot be used (a video that does not open or breaks off): a command over
    many inputs reports it and goes on with the others."""
