"""The noise-conditioned denoiser: positive homogeneity (no biases), broadcasting of the noise level,
bad input; the shipped weights load after their digest check and denoise pictures never seen in training."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv import assets
from physinv.nets.denoiser import (
    PRETRAINED_DENOISER,
    PRETRAINED_DENOISERS,
    Denoiser,
    UNetDenoiser,
    pretrained_denoiser,
)

f64 = torch.float64


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(1e-3, 1e3), h=st.integers(1, 9), w=st.integers(1, 9), lead=st.integers(1, 3),
       sigma=st.floats(0.0, 0.5))
def test_positively_homogeneous_over_scales_and_shapes(scale, h, w, lead, sigma):
    torch.manual_seed(0)
    net = Denoiser(depth=3, channels=4).double()
    x = torch.rand(lead, h, w, dtype=f64)
    out = net(x, sigma)
    assert out.shape == x.shape
    torch.testing.assert_close(net(scale * x, scale * sigma), scale * out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(net(torch.zeros_like(x), 0.0), torch.zeros_like(x))


@settings(max_examples=15, deadline=None)
@given(scale=st.floats(1e-3, 1e3), h=st.integers(1, 13), w=st.integers(1, 13), lead=st.integers(1, 3),
       sigma=st.floats(0.0, 0.5), levels=st.integers(1, 3))
def test_unet_denoiser_is_homogeneous_at_any_size(scale, h, w, lead, sigma, levels):
    # sizes that are not multiples of 2**(levels - 1) are padded by replication and cropped back
    torch.manual_seed(0)
    net = UNetDenoiser(channels=(3, 4, 5)[:levels], blocks=1).double()
    x = torch.rand(lead, h, w, dtype=f64)
    out = net(x, sigma)
    assert out.shape == x.shape
    torch.testing.assert_close(net(scale * x, scale * sigma), scale * out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(net(torch.zeros_like(x), 0.0), torch.zeros_like(x))


def test_unet_denoiser_is_translation_equivariant_away_from_the_padding():
    # a shift by the coarsest stride commutes with the network (up to border effects)
    torch.manual_seed(0)
    net = UNetDenoiser(channels=(3, 4), blocks=1).double()
    x = torch.rand(1, 64, 64, dtype=f64)
    a = net(x, 0.1)[..., 24:40, 24:40]
    b = net(torch.roll(x, (2, 2), dims=(-2, -1)), 0.1)[..., 26:42, 26:42]
    torch.testing.assert_close(a, b)


def test_unet_denoiser_bad_arguments_name_themselves():
    for bad in ((), "32", None, (4, 0), (4, 2.5)):
        with pytest.raises(ValueError, match="channels must be"):
            UNetDenoiser(channels=bad)
    with pytest.raises(ValueError, match="blocks must be an int >= 1"):
        UNetDenoiser(blocks=0)
    net = UNetDenoiser(channels=(4, 8), blocks=1)
    with pytest.raises(TypeError, match="float64 on cpu but the network is torch.float32"):
        net(torch.rand(8, 8, dtype=f64), 0.1)
    with pytest.raises(ValueError, match="sigma must be finite and >= 0"):
        net(torch.rand(8, 8), float("nan"))


def test_noise_level_per_image_equals_one_call_per_image():
    net = Denoiser(depth=3, channels=4).double()
    x = torch.rand(2, 3, 8, 8, dtype=f64)
    s = torch.tensor([[0.01, 0.05, 0.1], [0.2, 0.0, 0.3]], dtype=f64)
    both = net(x, s)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(both[i, j], net(x[i, j], float(s[i, j])))
    assert net(x[:0], 0.1).shape == (0, 3, 8, 8)


def test_bad_input_names_the_argument():
    net = Denoiser(depth=3, channels=4)
    x = torch.rand(2, 8, 8)
    with pytest.raises(TypeError, match="sigma must be a number or a tensor"):
        net(x, "0.1")
    with pytest.raises(ValueError, match="sigma must be finite and >= 0"):
        net(x, -0.1)
    with pytest.raises(ValueError, match="does not broadcast"):
        net(x, torch.full((3,), 0.1))
    with pytest.raises(TypeError, match="float64 on cpu but the network is torch.float32"):
        net(x.double(), 0.1)
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.rand(8), 0.1)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match="depth must be an int >= 2"):
            Denoiser(depth=bad)


def test_shipped_denoiser_is_listed_checked_and_denoises_unseen_pictures():
    import numpy as np
    from skimage.restoration import denoise_tv_chambolle

    from physinv.data import skimage_image
    from physinv.metrics import psnr

    assert PRETRAINED_DENOISER in assets.names("weights")
    D = pretrained_denoiser()
    assert not any(p.requires_grad for p in D.parameters()) and not D.training
    g = torch.Generator().manual_seed(0)
    for name in ("astronaut", "coins"):  # test pictures: never seen in training
        x = torch.from_numpy(skimage_image(name, 128)).float()
        for sigma in (0.02, 0.05, 0.1):
            noisy = x + sigma * torch.randn(x.shape, generator=g)
            ours = float(psnr(D(noisy, sigma), x, data_range=1.0))
            # scikit-image's TV denoiser with the best of nine weights (an oracle choice)
            tv = max(float(psnr(torch.from_numpy(denoise_tv_chambolle(noisy.numpy(), weight=w)), x,
                                data_range=1.0)) for w in sigma * np.geomspace(0.5, 8, 9))
            assert ours > tv > float(psnr(noisy, x, data_range=1.0)), (name, sigma, ours, tv)
    D64 = pretrained_denoiser(dtype=torch.float64)
    assert next(D64.parameters()).dtype == f64
    with pytest.raises(TypeError, match="dtype must be"):
        pretrained_denoiser(dtype=torch.float16)


def test_every_shipped_denoiser_loads_by_name_and_bad_names_are_refused():
    x = torch.full((1, 24, 24), 0.5)
    noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    kinds = {"unet": UNetDenoiser, "dncnn": Denoiser}
    for name, path in PRETRAINED_DENOISERS.items():
        assert path in assets.names("weights")
        D = pretrained_denoiser(name=name)
        assert type(D) is kinds[name] and not D.training
        assert float((D(noisy, 0.05) - x).square().mean()) < float((noisy - x).square().mean()) / 4
    assert PRETRAINED_DENOISER in PRETRAINED_DENOISERS.values()
    for bad in ("bm3d", 1, ""):
        with pytest.raises(ValueError, match="name must be one of"):
            pretrained_denoiser(name=bad)


def test_both_denoisers_share_one_call_protocol_and_name_themselves_in_errors():
    from physinv.nets import ResidualDenoiser

    for net in (Denoiser(depth=3, channels=4), UNetDenoiser(channels=(4, 8), blocks=1)):
        assert isinstance(net, ResidualDenoiser)
        name = type(net).__name__
        with pytest.raises(ValueError, match=f"^{name}: sigma must be finite"):
            net(torch.rand(8, 8), -0.1)
        with pytest.raises(TypeError, match=f"^{name}: x must be a torch.Tensor"):
            net([[0.0]], 0.1)
        with pytest.raises(ValueError, match=f"^{name}: sigma of shape"):
            net(torch.rand(2, 8, 8), torch.full((3,), 0.1))

    class Bare(ResidualDenoiser):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

    with pytest.raises(TypeError, match="abstract method '?_residual"):
        Bare()
