"""Argument checks for public constructors: a bad value fails where it is given, with a
`ValueError` that names the argument, the value and what is allowed."""
import math
import numbers
import os


def integer(name, value, minimum):
    """`value` as an int, if it is an integer (not a bool) of at least `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f'{name}={value!r} is not allowed: it must be an integer >= {minimum}.')
    return int(value)


def non_negative_number(name, value):
    """`value` as a float, if it is a finite real number >= 0."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value < 0):
        raise ValueError(f'{name}={value!r} is not allowed: it must be a finite number >= 0 '
                         f'(0 turns it off).')
    return float(value)


def image_size(name, value):
    """`value` as a (height, width) pair of positive ints."""
    try:
        height, width = value
    except (TypeError, ValueError):
        raise ValueError(f'{name}={value!r} is not allowed: it must be a pair (height, width) '
                         f'of integers >= 1, e.g. (96, 96).') from None
    return integer(f'{name}[0]', height, 1), integer(f'{name}[1]', width, 1)


def optional_path(name, value):
    if value is None or (isinstance(value, (str, os.PathLike)) and os.fspath(value) != ''):
        return value
    raise ValueError(f'{name}={value!r} is not allowed: it must be a directory path (not empty) '
                     f'or None.')
