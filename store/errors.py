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
