"""Scaffolding methods, one file each: a method's rollout plan and loss terms behind one interface.

=============  ==========================  ===============================================
name           class                       what it does
=============  ==========================  ===============================================
``grpo``       :class:`.grpo.GRPO`         no guidance (GRPO / Dr.GRPO by TRL settings)
``pss``        :class:`.sparkle.SparklePSS`  SPARKLE: prompt-side partial-step levels 0..K
``seele``      :class:`.seele.Seele`       SEELE: adaptive response-prefix hints, 3PL refit
``uft``        :class:`.uft.UFT`           binomial hint lengths annealed to zero
``luffy``      :class:`.luffy.Luffy`       off-policy reference traces, shaped ratio
``prefix_rft`` :class:`.prefix_rft.PrefixRFT`  decaying trained prefixes, top-entropy tokens
=============  ==========================  ===============================================

A method of your own: subclass :class:`~.base.Method` in any module and name
it in a recipe as ``method: package.module:ClassName`` (or give it a ``name``
and import its module before training).
"""

from __future__ import annotations

import importlib

from . import grpo, luffy, prefix_rft, seele, sparkle, uft  # noqa: F401  (registers the built-in methods)
from .base import REGISTRY, LossContext, Method, MissingReference, check_references, require_steps

__all__ = ["Method", "LossContext", "MissingReference", "check_references", "get_method", "method_names",
           "require_steps"]


def method_names() -> list[str]:
    """The registered method names."""
    return sorted(REGISTRY)


def get_method(name: str) -> type[Method]:
    """The method class a name denotes: a registered name, or ``"package.module:ClassName"``."""
    if name in REGISTRY:
        return REGISTRY[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"method {name!r}: cannot import it ({e})") from None
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise ValueError(f"method {name!r} is not a subclass of scaffoldrl.methods.Method")
        return cls
    raise ValueError(f"unknown method {name!r}: one of {', '.join(method_names())}, or 'package.module:Class'")
