"""The specification's module names, for scripts written against the system this package replaces.

``feedback_system`` and its modules ``feedback_handler``, ``feedback_reinforcement`` and
``feedback_api`` each answer with ``feedback_core``'s names: the functions (acting on its default
system), the configuration constants (the settings in force: assigning one is refused, saying how
to set it) and ``register_feedback_routes``. So ``from feedback_system import save_dislike`` and
``from feedback_system.feedback_reinforcement import FEEDBACK_ACCUMULATION_THRESHOLD`` work as the
specification shows.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from typing import Any

import feedback_core

SUBMODULES = ("feedback_handler", "feedback_reinforcement", "feedback_api")


class _Alias(types.ModuleType):
    """A module whose names are ``feedback_core``'s, read when asked for (the constants show
    the settings in force at that moment, as ``feedback_core``'s do)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        try:
            return getattr(feedback_core, name)
        except AttributeError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in feedback_core._CONSTANTS or name == "DB_PATH":
            # Assigning would change nothing the system reads: refused as feedback_core refuses it.
            raise AttributeError(feedback_core._how_to_set(name, value))
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(feedback_core.__all__))


__all__ = list(feedback_core.__all__)
sys.modules[__name__].__class__ = _Alias
for _name in SUBMODULES:
    _module = _Alias(f"{__name__}.{_name}", f"The specification's {_name}.py: feedback_core's names.")
    _module.__spec__ = importlib.util.spec_from_loader(_module.__name__, loader=None)
    _module.__all__ = __all__
    sys.modules[_module.__name__] = _module
    setattr(sys.modules[__name__], _name, _module)
