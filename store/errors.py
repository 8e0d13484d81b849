"""Domain errors raised by the store. Messages are written for the person who will read them."""


class FlywheelError(Exception):
    """Base class: the message says what went wrong and, where possible, what would fix it."""


class NotFound(FlywheelError):
    pass


class Conflict(FlywheelError):
    pass


class Forbidden(FlywheelError):
    pass


class InvalidTransition(FlywheelError):
    pass


class UntrustedArtifact(FlywheelError):
    """A model artifact Flywheel will not register or load: outside the artifact roots, missing, or not
    the bytes whose SHA-256 was recorded. The file is never unpickled."""
