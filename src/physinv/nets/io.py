"""Save a network with everything needed to rebuild it, and load it back in one call.

File format (network file version 1)
------------------------------------
A network file is a physinv checkpoint (see :mod:`physinv.train.checkpoint`:
a header line with the SHA-256 digest and length of the payload, then a
``torch.save`` archive read with ``weights_only=True``) whose payload is a
dict with the keys

``physinv_net``
    The network file version (1).
``net``
    How to rebuild the network: ``{"type": <class name>, "args": {...}}``,
    the arguments of its constructor call, with operators stored as
    ``{"__operator__": <operator config>}``, nested networks as
    ``{"__net__": {...}}`` and dtypes as ``{"__dtype__": "float32"}``.
``state_dict``
    The learned weights (physics buffers derived from the operator are not
    stored: they are rebuilt from it).
``physinv_version``, ``metadata``
    The physinv version that wrote the file and what the caller attached.

Loading verifies the digest, rebuilds the operator from its config (under
physinv's size limit, see :func:`physinv.set_max_elements`), builds the
network from its recorded arguments and loads the weights strictly. A file
that is not such a network file is refused with :class:`NetFileError`
naming it; nothing in the file can make physinv import or run code.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..operators import Factorization, LinearOperator, from_config
from ..train.checkpoint import CheckpointError, atomic_save, load_checkpoint
from ._record import init_record, net_class, net_type

__all__ = ["save_net", "load_net", "net_config", "build_net", "NetFileError", "NET_FILE_VERSION"]

#: Version of the network file schema.
NET_FILE_VERSION = 1
_KEYS = ("physinv_net", "net", "state_dict")
_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
    torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)}


class NetFileError(CheckpointError):
    """A file is not a physinv network file, or it cannot rebuild its network (the message names the file)."""


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, complex, str)):
        return value
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, LinearOperator):
        return {"__operator__": value.to_config()}
    if isinstance(value, Factorization):
        raise TypeError(f"save_net: {where} is a {type(value).__name__}; a network built from a "
                        "factorization cannot be rebuilt from a file: build it from the operator "
                        "(e.g. SpectralFilterNet(A) instead of SpectralFilterNet(A.svd()))")
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, nn.Module):
        return {"__net__": net_config(value, where)}
    if isinstance(value, tuple):
        return tuple(_encode(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"save_net: {where} is a dict with keys that are not strings")
        if any(k.startswith("__") and k.endswith("__") for k in value):
            raise TypeError(f"save_net: {where} has a key of the form '__name__', reserved by the "
                            "file format")
        return {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"save_net: {where} is a {type(value).__name__}, which a network file cannot store "
                    "(it stores numbers, strings, None, tensors, dtypes, physinv operators, savable "
                    "networks, and lists, tuples and dicts of those)")


def net_config(net: nn.Module, where: str = "net") -> dict[str, Any]:
    """How to rebuild ``net``: its class name and its encoded constructor arguments.

    Raises
    ------
    TypeError
        If ``net`` was not built by a savable network class (every physinv
        network is one; derive your own from
        :class:`physinv.nets.SavableModule`), or one of its constructor
        arguments cannot be stored.

    Examples
    --------
    >>> from physinv.nets import DnCNN
    >>> net_config(DnCNN(depth=3, channels=4))
    {'type': 'DnCNN', 'args': {'depth': 3, 'channels': 4, 'residual': False, 'zero_init': True}}
    """
    if not isinstance(net, nn.Module):
        raise TypeError(f"save_net: {where} must be a torch.nn.Module, got {type(net).__name__}")
    record = init_record(net)
    if record is None:
        raise TypeError(f"save_net: {where} is a {type(net).__name__}, which does not record its constructor "
                        "arguments; derive it from physinv.nets.SavableModule instead of torch.nn.Module, or "
                        "save its state_dict with physinv.train.atomic_save and rebuild it yourself")
    cls, arguments = record
    return {"type": net_type(cls),
            "args": {k: _encode(v, f"{where}.{k}") for k, v in arguments.items()}}


def _decode(value: Any, operator: LinearOperator | None, found: list[LinearOperator]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__operator__"}:
            if operator is not None:
                stored = from_config(value["__operator__"])
                if stored.in_shape != operator.in_shape or stored.out_shape != operator.out_shape:
                    raise ValueError(f"operator maps {operator.in_shape} -> {operator.out_shape}, but the "
                                     f"network was built on one that maps {stored.in_shape} -> "
                                     f"{stored.out_shape}")
                found.append(operator)
                return operator
            op = from_config(value["__operator__"])
            found.append(op)
            return op
        if set(value) == {"__dtype__"}:
            name = value["__dtype__"]
            if name not in _DTYPES:
                raise ValueError(f"unknown dtype {name!r}")
            return _DTYPES[name]
        if set(value) == {"__net__"}:
            return build_net(value["__net__"], operator=operator, _found=found)
        return {k: _decode(v, operator, found) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_decode(v, operator, found) for v in value)
    if isinstance(value, list):
        return [_decode(v, operator, found) for v in value]
    return value


def build_net(config: Mapping[str, Any], operator: LinearOperator | None = None,
              _found: list[LinearOperator] | None = None) -> nn.Module:
    """Build a network (with freshly initialized weights) from :func:`net_config` output.

    Parameters
    ----------
    config : dict
        ``{"type": ..., "args": {...}}``.
    operator : LinearOperator, optional
        Use this operator wherever the config stores one (it must have the
        same input and output shapes); default: rebuild the stored ones.

    Examples
    --------
    >>> from physinv.nets import DnCNN
    >>> net = build_net(net_config(DnCNN(depth=3, channels=4)))
    >>> type(net).__name__, len(net.body)
    ('DnCNN', 5)
    """
    if (not isinstance(config, Mapping) or set(config) != {"type", "args"}
            or not isinstance(config["args"], dict)):
        raise ValueError(f"a network config is a dict with keys 'type' and 'args', got {config!r:.200}")
    cls = net_class(config["type"])
    arguments = _decode(config["args"], operator, [] if _found is None else _found)
    params = inspect.signature(cls.__init__).parameters
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, value in arguments.items():
        kind = params[name].kind if name in params else None
        if kind is None:
            raise ValueError(f"{config['type']} has no constructor argument {name!r}: the file was "
                             "written by another version of that class")
        if kind is params[name].VAR_POSITIONAL:
            args.extend(value)
        elif kind is params[name].VAR_KEYWORD:
            kwargs.update(value)
        elif kind is params[name].POSITIONAL_ONLY:
            args.append(value)
        else:
            kwargs[name] = value
    return cls(*args, **kwargs)


def save_net(net: nn.Module, path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None) -> None:
    """Save ``net`` with its constructor arguments (its operator's config included) and weights, atomically.

    Parameters
    ----------
    net : nn.Module
        Any physinv network (or a :class:`~physinv.nets.SavableModule` of
        your own), trained or not.
    path : str or os.PathLike
        The file to write (atomically: a reader sees the old file or the
        new one, never a half-written one).
    metadata : dict, optional
        Numbers, strings, lists and dicts kept in the file (for example the
        training data and the PSNR reached); :func:`load_net` with
        ``with_metadata=True`` returns them.

    Raises
    ------
    TypeError
        If the network cannot be rebuilt from a file (a class that does not
        record its constructor arguments, or an argument that cannot be
        stored); nothing is written then.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from physinv import psf
    >>> from physinv.operators import Convolution
    >>> from physinv.nets import UnrolledLandweber
    >>> A = Convolution(psf.gaussian(1.5), (16, 16))
    >>> net = UnrolledLandweber(A, n_layers=3)
    >>> with torch.no_grad():
    ...     _ = net.step_factors.mul_(0.5)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.pt")
    >>> save_net(net, path, metadata={"note": "half steps"})
    >>> again = load_net(path)
    >>> y = torch.rand(16, 16)
    >>> bool(torch.equal(again(y), net(y)))
    True
    """
    config = net_config(net)
    meta = _encode(dict(metadata or {}), "metadata")
    from .. import __version__

    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    atomic_save({"physinv_net": NET_FILE_VERSION, "net": config, "state_dict": state,
                 "physinv_version": __version__, "metadata": meta}, path)


def load_net(path: str | os.PathLike, *, operator: LinearOperator | None = None, device: Any = None,
             with_metadata: bool = False) -> nn.Module | tuple[nn.Module, dict[str, Any]]:
    """Rebuild a network saved by :func:`save_net` and load its weights.

    Parameters
    ----------
    path : str or os.PathLike
        A network file.
    operator : LinearOperator, optional
        Build the network on this operator instead of the stored one (for
        example the same blur on a GPU-resident operator, or a deliberately
        different operator of the same shapes); default: the operator the
        network was saved with, rebuilt from its config.
    device : torch.device or str, optional
        Move the network there after loading (default: the CPU).
    with_metadata : bool
        Also return the ``metadata`` given to :func:`save_net`.

    Returns
    -------
    nn.Module, or (nn.Module, dict)
        The network in training mode, as :func:`save_net` found it.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    NetFileError
        (a ``ValueError``) If the file is damaged, is not a physinv network
        file (a training checkpoint is told apart and named), or cannot
        rebuild its network; the message names the file.

    Examples
    --------
    >>> import os, tempfile
    >>> from physinv.nets import DnCNN
    >>> path = os.path.join(tempfile.mkdtemp(), "dncnn.pt")
    >>> save_net(DnCNN(depth=3, channels=8), path)
    >>> type(load_net(path)).__name__
    'DnCNN'
    """
    if operator is not None and not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be a physinv LinearOperator or None, got {type(operator).__name__}")
    if not isinstance(with_metadata, bool):
        raise TypeError(f"with_metadata must be a bool, got {type(with_metadata).__name__}")
    p = os.fspath(path)
    try:
        ck = load_checkpoint(p)
    except CheckpointError as e:
        raise NetFileError(str(e)) from e
    if not isinstance(ck, dict) or not all(k in ck for k in _KEYS):
        hint = ""
        if isinstance(ck, dict) and "model" in ck:
            hint = (" (it is a training checkpoint: build the network as it was built for training and "
                    "load these weights with physinv.train.load_weights, then keep it with save_net)")
        raise NetFileError(f"{p} is not a physinv network file{hint}")
    if ck["physinv_net"] != NET_FILE_VERSION:
        raise NetFileError(f"{p}: network file version {ck['physinv_net']!r} is not supported (this physinv "
                           f"reads version {NET_FILE_VERSION})")
    try:
        net = build_net(ck["net"], operator=operator)
    except (TypeError, ValueError) as e:
        raise NetFileError(f"{p}: cannot rebuild its network: {e}") from e
    try:
        net.load_state_dict(ck["state_dict"])
    except RuntimeError as e:
        raise NetFileError(f"{p}: the stored weights do not fit the rebuilt {type(net).__name__}: {e}") from e
    if device is not None:
        net.to(device)
    if with_metadata:
        return net, dict(ck.get("metadata") or {})
    return net
