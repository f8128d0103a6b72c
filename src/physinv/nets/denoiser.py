"""A noise-level-conditioned CNN denoiser, and the trained one that ships with physinv.

:class:`Denoiser` maps a noisy image and its noise level to an estimate of
the clean image, ``D(x, sigma) = x - R([x, sigma])``, where the residual
network ``R`` sees the noise level as a second input channel (a constant
map, as in FFDNet and DRUNet). Its convolutions have no bias terms, so with
ReLU activations the whole map is positively homogeneous:
``D(a x, a sigma) = a D(x, sigma)`` for every ``a > 0``. The denoiser
therefore does not care about the intensity scale of the data (an image in
[0, 255] with sigma 12.75 is denoised exactly as the same image in [0, 1] with
sigma 0.05), and a network without biases generalises across noise levels
(Mohan, Kadkhodaie, Simoncelli and Fernandez-Granda, "Robust and
interpretable blind image denoising via bias-free convolutional neural
networks", arXiv:1906.05478).

:func:`pretrained_denoiser` returns the network trained by
``scripts/train_denoiser.py`` on patches of the training pictures only (see
:mod:`physinv.bench.splits`), loaded from the package's shipped files after a
SHA-256 check, never downloaded. It is the prior of
:func:`physinv.solvers.pnp`.
"""

from __future__ import annotations

import abc
import io
import numbers
from typing import Any

import torch
from torch import nn

from ._record import SavableModule

__all__ = ["ResidualDenoiser", "Denoiser", "UNetDenoiser", "pretrained_denoiser", "PRETRAINED_DENOISER",
           "PRETRAINED_DENOISERS"]

#: The shipped denoisers (files of :mod:`physinv.assets`), by the name :func:`pretrained_denoiser` takes.
PRETRAINED_DENOISERS = {"unet": "weights/denoiser_unet_v2.pt", "dncnn": "weights/denoiser_v1.pt"}
#: The shipped weights :func:`pretrained_denoiser` loads by default.
PRETRAINED_DENOISER = PRETRAINED_DENOISERS["unet"]


def _positive_int(v: Any, name: str, minimum: int, owner: str = "Denoiser") -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{owner}: {name} must be an int >= {minimum}, got {v!r}")
    return int(v)


class ResidualDenoiser(SavableModule, abc.ABC):
    """Base of physinv's denoisers: ``D(x, sigma) = x - R([x, sigma])``.

    Holds the call protocol every shipped denoiser shares, so a subclass only
    builds its layers and implements the abstract ``_residual`` (a subclass
    without it cannot be instantiated), which maps a batch of
    ``(B, 2, H, W)`` inputs (the images and a constant plane of their noise
    levels) to the ``(B, 1, H, W)`` noise estimate ``R``.

    Notes
    -----
    Called as ``denoiser(x, sigma)`` with ``x`` of shape ``(..., H, W)`` and
    ``sigma`` a number or a tensor broadcasting to the leading dims (one
    noise level per image). ``x`` must have the network's dtype and device;
    ``sigma`` must be finite and non-negative. A bias-free ``R`` makes the
    map positively homogeneous, ``D(a x, a sigma) = a D(x, sigma)`` for
    ``a > 0``, with ``D(0, 0) = 0``.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> class Shrink(ResidualDenoiser):          # R = a 3x3 convolution of [x, sigma]
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = nn.Conv2d(2, 1, 3, padding=1, bias=False)
    ...     def _residual(self, inp):
    ...         return self.conv(inp)
    >>> Shrink()(torch.rand(3, 8, 8), 0.1).shape
    torch.Size([3, 8, 8])
    """

    def _sigma(self, sigma: Any, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-2]
        if isinstance(sigma, bool) or not isinstance(sigma, (numbers.Real, torch.Tensor)):
            raise TypeError(f"{type(self).__name__}: sigma must be a number or a tensor, "
                            f"got {type(sigma).__name__}")
        s = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if not torch.isfinite(s).all() or (s < 0).any():
            raise ValueError(f"{type(self).__name__}: sigma must be finite and >= 0")
        try:
            s = torch.broadcast_to(s, lead)
        except RuntimeError:
            raise ValueError(f"{type(self).__name__}: sigma of shape {tuple(s.shape)} does not broadcast "
                             f"to the leading dims {tuple(lead)} of x") from None
        return s.reshape(-1, 1, 1, 1)

    def forward(self, x: torch.Tensor, sigma: Any) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__}: x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2 or x.shape[-1] < 1 or x.shape[-2] < 1:
            raise ValueError(f"{type(self).__name__}: x must have shape (..., H, W), got {tuple(x.shape)}")
        w = next(self.parameters())
        if x.dtype != w.dtype or x.device != w.device:
            raise TypeError(f"{type(self).__name__}: x is {x.dtype} on {x.device} but the network is "
                            f"{w.dtype} on {w.device}; use denoiser.to(...) to match")
        s = self._sigma(sigma, x)
        if x.numel() == 0:
            return x.clone()
        flat = x.reshape(-1, 1, *x.shape[-2:])
        inp = torch.cat([flat, s.expand_as(flat)], dim=1)
        return (flat - self._residual(inp)).reshape(x.shape)

    @abc.abstractmethod
    def _residual(self, inp: torch.Tensor) -> torch.Tensor:
        """The noise estimate ``R``: ``(B, 2, H, W)`` images and noise planes to ``(B, 1, H, W)``."""


class Denoiser(ResidualDenoiser):
    """Residual, bias-free, noise-conditioned CNN: ``D(x, sigma) = x - R([x, sigma])``.

    Parameters
    ----------
    depth : int
        Number of 3x3 convolutions in ``R`` (>= 2), ReLU between them.
    channels : int
        Feature channels.

    Notes
    -----
    The call of :class:`ResidualDenoiser`. Without biases the map is
    positively homogeneous, ``D(a x, a sigma) = a D(x, sigma)`` for
    ``a > 0``, and ``D(0, 0) = 0``.

    Examples
    --------
    >>> import torch
    >>> net = Denoiser(depth=4, channels=8).double()
    >>> x = torch.rand(2, 16, 16, dtype=torch.float64)
    >>> out = net(x, 0.05)
    >>> out.shape
    torch.Size([2, 16, 16])
    >>> torch.allclose(net(3 * x, 0.15), 3 * out)     # positively homogeneous
    True
    """

    def __init__(self, depth: int = 10, channels: int = 32) -> None:
        super().__init__()
        depth = _positive_int(depth, "depth", 2)
        channels = _positive_int(channels, "channels", 1)
        self.depth, self.channels = depth, channels
        layers: list[nn.Module] = [nn.Conv2d(2, channels, 3, padding=1, bias=False), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.ReLU()]
        layers.append(nn.Conv2d(channels, 1, 3, padding=1, bias=False))
        self.body = nn.Sequential(*layers)

    def config(self) -> dict[str, int]:
        """The constructor arguments (stored beside the weights)."""
        return {"depth": self.depth, "channels": self.channels}

    def _residual(self, inp: torch.Tensor) -> torch.Tensor:
        return self.body(inp)


class _ResBlock(nn.Module):
    """``h + conv(relu(conv(h)))``, bias-free."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.b = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        with torch.no_grad():  # start each block near the identity: stable without normalisation
            self.b.weight.mul_(0.2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.b(torch.relu(self.a(h)))


class UNetDenoiser(ResidualDenoiser):
    """Multi-scale residual U-Net denoiser (a small, bias-free DRUNet-like design).

    ``D(x, sigma) = x - R([x, sigma])`` like :class:`Denoiser`, but ``R`` is a
    U-Net: at each of ``len(channels)`` scales ``blocks`` residual blocks,
    2x2 strided convolutions down, 2x2 transposed convolutions up and
    additive skips (the layout of DRUNet, Zhang et al., "Plug-and-play image
    restoration with deep denoiser prior", arXiv:2008.13751, without its
    biases and at a size for CPU inference). The coarse scales see far: the
    receptive field spans about ``2**len(channels) * 4 * blocks`` pixels,
    what a prior inside a deblurring loop needs at high noise levels.

    Parameters
    ----------
    channels : tuple of int
        Feature channels per scale, finest first (at least one scale).
    blocks : int
        Residual blocks per scale and side (>= 1).

    Notes
    -----
    Same call as :class:`ResidualDenoiser` (``(..., H, W)`` images, a number or a
    tensor of noise levels per image) and the same positive homogeneity,
    ``D(a x, a sigma) = a D(x, sigma)``: there are no biases and the images
    are padded by replication (a linear map) to a multiple of
    ``2**(len(channels) - 1)`` and cropped back, so any size works.

    Examples
    --------
    >>> import torch
    >>> net = UNetDenoiser(channels=(4, 8), blocks=1).double()
    >>> x = torch.rand(2, 15, 17, dtype=torch.float64)
    >>> out = net(x, 0.05)
    >>> out.shape
    torch.Size([2, 15, 17])
    >>> torch.allclose(net(3 * x, 0.15), 3 * out)     # positively homogeneous
    True
    """

    def __init__(self, channels: tuple[int, ...] | list[int] = (32, 64, 128), blocks: int = 2) -> None:
        super().__init__()
        if isinstance(channels, (str, bytes)) or not hasattr(channels, "__len__") or len(channels) < 1:
            raise ValueError(f"UNetDenoiser: channels must be a non-empty sequence of ints >= 1, "
                             f"got {channels!r}")
        chans = tuple(_positive_int(c, "channels", 1, "UNetDenoiser") for c in channels)
        blocks = _positive_int(blocks, "blocks", 1, "UNetDenoiser")
        self.channels, self.blocks = chans, blocks
        self.head = nn.Conv2d(2, chans[0], 3, padding=1, bias=False)
        self.enc, self.down = nn.ModuleList(), nn.ModuleList()
        for c, c_next in zip(chans[:-1], chans[1:]):
            self.enc.append(nn.Sequential(*[_ResBlock(c) for _ in range(blocks)]))
            self.down.append(nn.Conv2d(c, c_next, 2, stride=2, bias=False))
        self.mid = nn.Sequential(*[_ResBlock(chans[-1]) for _ in range(blocks)])
        self.up, self.dec = nn.ModuleList(), nn.ModuleList()
        for c, c_next in zip(reversed(chans[:-1]), reversed(chans[1:])):
            self.up.append(nn.ConvTranspose2d(c_next, c, 2, stride=2, bias=False))
            self.dec.append(nn.Sequential(*[_ResBlock(c) for _ in range(blocks)]))
        self.tail = nn.Conv2d(chans[0], 1, 3, padding=1, bias=False)

    def config(self) -> dict[str, Any]:
        """The constructor arguments (stored beside the weights)."""
        return {"channels": list(self.channels), "blocks": self.blocks}

    def _residual(self, inp: torch.Tensor) -> torch.Tensor:
        h_in, w_in = inp.shape[-2:]
        m = 2 ** (len(self.channels) - 1)
        ph, pw = -h_in % m, -w_in % m
        if ph or pw:
            inp = nn.functional.pad(inp, (0, pw, 0, ph), mode="replicate")
        h = self.head(inp)
        skips = []
        for enc, down in zip(self.enc, self.down):
            h = enc(h)
            skips.append(h)
            h = down(h)
        h = self.mid(h)
        for up, dec in zip(self.up, self.dec):
            h = dec(up(h) + skips.pop())
        return self.tail(h)[..., :h_in, :w_in]


def pretrained_denoiser(device: Any = None, dtype: torch.dtype = torch.float32,
                        name: str | None = None) -> Denoiser:
    """The denoiser that ships with physinv, in evaluation mode with gradients off.

    Trained by ``scripts/train_denoiser.py`` (seeded) on patches of the
    training pictures and generated phantoms, for noise levels 0 to 0.2 on
    images in [0, 1] (any scale works: the network is positively homogeneous).
    The weights are read from :mod:`physinv.assets`, their SHA-256 verified
    before ``torch.load(weights_only=True)`` reads them.

    Parameters
    ----------
    device : torch.device or str, optional
        Where to put the network (default CPU).
    dtype : torch.dtype
        float32 (default) or float64.
    name : {"unet", "dncnn"}, optional
        Which shipped network (:data:`PRETRAINED_DENOISERS`): ``"unet"``, a
        :class:`UNetDenoiser` (1.0 M weights, the stronger prior), or
        ``"dncnn"``, the first shipped :class:`Denoiser` (75,000 weights,
        about three times faster). Default: the file named by
        :data:`PRETRAINED_DENOISER`.

    Examples
    --------
    >>> import torch
    >>> D = pretrained_denoiser()
    >>> x = torch.full((1, 32, 32), 0.5)
    >>> noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    >>> bool(((D(noisy, 0.05) - x).square().mean() < (noisy - x).square().mean() / 4))
    True
    """
    from .. import assets

    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"pretrained_denoiser: dtype must be torch.float32 or torch.float64, got {dtype}")
    if name is None:
        path = PRETRAINED_DENOISER
    elif isinstance(name, str) and name in PRETRAINED_DENOISERS:
        path = PRETRAINED_DENOISERS[name]
    else:
        raise ValueError(f"pretrained_denoiser: name must be one of {sorted(PRETRAINED_DENOISERS)}, "
                         f"got {name!r}")
    blob = torch.load(io.BytesIO(assets.read_bytes(path)), map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "physinv-denoiser" or "state_dict" not in blob:
        raise assets.AssetError(f"{path} is not a physinv denoiser file")
    classes = {"Denoiser": Denoiser, "UNetDenoiser": UNetDenoiser}
    cls = classes.get(blob.get("class", "Denoiser"))
    if cls is None:
        raise assets.AssetError(f"{path} holds an unknown denoiser class {blob.get('class')!r}")
    net = cls(**blob["config"])
    net.load_state_dict(blob["state_dict"])
    net = net.to(device=device if device is not None else "cpu", dtype=dtype).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net
