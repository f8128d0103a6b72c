"""Networks that remember how they were built, so that one call saves them and one call rebuilds them.

Every physinv network derives from :class:`SavableModule`. Subclassing it
registers the class under :func:`net_type` and wraps its ``__init__`` so
that the arguments of the outermost constructor call (defaults filled in)
are kept on the instance. :func:`physinv.nets.save_net` stores them next
to the learned weights; :func:`physinv.nets.load_net` rebuilds the network
from them (the operator from its config) and loads the weights.

A user subclass is registered too, under its module and qualified name,
once its module has been imported: a file never makes physinv import code.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from torch import nn

__all__ = ["SavableModule", "net_type", "net_class", "init_record"]

_REGISTRY: dict[str, type[nn.Module]] = {}
_RECORD = "_physinv_init"


def net_type(cls: type) -> str:
    """The name under which :func:`load_net` finds network class ``cls``.

    physinv's own networks are known by their class name, every other class
    by its module and qualified name (as operators are).

    Examples
    --------
    >>> from physinv.nets import UNet
    >>> net_type(UNet)
    'UNet'
    """
    if cls.__module__ == "physinv" or cls.__module__.startswith("physinv."):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def net_class(name: str) -> type[nn.Module]:
    """The registered network class called ``name`` (see :func:`net_type`).

    Raises
    ------
    ValueError
        If no such class is registered (for a user class: its module was not imported).

    Examples
    --------
    >>> net_class("UNet").__name__
    'UNet'
    """
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        own = sorted(k for k, c in _REGISTRY.items() if "." not in k and not k.startswith("_"))
        raise ValueError(f"unknown network class {name!r}; physinv's networks are {own}, and a network "
                         "class of your own is known as 'module.QualifiedName' once its module is imported")
    return cls


def init_record(module: nn.Module) -> tuple[type[nn.Module], dict[str, Any]] | None:
    """``(class, arguments)`` of the constructor call that built ``module``, or ``None`` if not recorded.

    Examples
    --------
    >>> from physinv.nets import DnCNN
    >>> cls, args = init_record(DnCNN(depth=3, channels=4))
    >>> cls.__name__, args["depth"], args["channels"]
    ('DnCNN', 3, 4)
    """
    return module.__dict__.get(_RECORD)


def _wrap_init(cls: type) -> None:
    init = cls.__dict__.get("__init__")
    if init is None:
        return
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        if _RECORD not in self.__dict__:  # the outermost constructor records, the super() calls do not
            try:
                bound = signature.bind(self, *args, **kwargs)
            except TypeError:  # the constructor itself will report the bad call
                pass
            else:
                bound.apply_defaults()
                arguments = dict(bound.arguments)
                arguments.pop(next(iter(signature.parameters)))
                object.__setattr__(self, _RECORD, (type(self), arguments))
        init(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[method-assign]


class SavableModule(nn.Module):
    """An ``nn.Module`` whose constructor arguments are recorded, so :func:`save_net` can rebuild it.

    Subclass it instead of ``nn.Module`` to make a network of your own
    savable with :func:`physinv.nets.save_net`: its constructor arguments
    must then be numbers, strings, ``None``, tensors, dtypes, physinv
    operators, other savable networks, or lists, tuples and dicts of those.

    Examples
    --------
    >>> import torch
    >>> class Scale(SavableModule):
    ...     def __init__(self, n: int = 3) -> None:
    ...         super().__init__()
    ...         self.w = torch.nn.Parameter(torch.ones(n))
    >>> init_record(Scale(n=5))[1]
    {'n': 5}
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[net_type(cls)] = cls
        _wrap_init(cls)
