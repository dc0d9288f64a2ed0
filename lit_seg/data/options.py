"""Numeric options checked where they enter, each failure one line naming the option and its value."""


class OptionError(ValueError):
    """An option's value cannot mean anything sensible (a batch of 0 images, a crop of -5 pixels)."""


def check_option(valid: bool, name: str, value: object, expected: str) -> None:
    """Raises :class:`OptionError` ``"<name> <value>: expected <expected>"`` unless ``valid``."""
    if not valid:
        raise OptionError(f"{name} {value}: expected {expected}")
