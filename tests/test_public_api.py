"""The public surface: a sorted __all__, everything importable, one error tree."""

from __future__ import annotations

import inspect

import satchel
from satchel import errors


def test_all_is_sorted_and_importable():
    assert satchel.__all__ == sorted(satchel.__all__)
    for name in satchel.__all__:
        assert hasattr(satchel, name), name


def test_every_error_is_a_satchel_error_and_exported():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) > 10
    for cls in classes:
        assert issubclass(cls, satchel.SatchelError) or cls.__name__ in errors.DERIVA_ML_ERRORS, cls
        assert issubclass(cls, satchel.DerivaMLException), f"{cls} is not caught by deriva-ml scripts"
        assert cls.__name__ in satchel.__all__, f"{cls.__name__} is not exported from satchel"


def test_error_tree_is_drawn_in_the_docstring():
    for cls in [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]:
        assert cls.__name__ in errors.__doc__, f"{cls.__name__} missing from the tree in errors.py"
