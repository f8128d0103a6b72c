"""save_net / load_net: a network comes back from one file equal to what was saved; bad files are refused."""

from __future__ import annotations

import os

import pytest
import torch

from physinv import psf
from physinv.nets import (
    MLP,
    DataDriven,
    Denoiser,
    DnCNN,
    HybridNet,
    LearnedPrimalDual,
    NetFileError,
    ResidualDenoiser,
    SavableModule,
    SpectralFilterNet,
    UNet,
    UNetDenoiser,
    UnrolledHQS,
    UnrolledISTA,
    UnrolledLandweber,
    load_net,
    save_net,
)
from physinv.nets.io import build_net, net_config
from physinv.operators import Convolution, Matrix, Radon
from physinv.train import atomic_save

f64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _conv(shape=(16, 16), sigma=1.2, boundary="circular"):
    return Convolution(psf.gaussian(sigma, 5), shape, boundary=boundary)


def _perturb(net: torch.nn.Module, seed: int = 0) -> None:
    """Change every floating-point parameter, so a round trip that ignored the weights would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.is_floating_point():
                p.add_(0.01 * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _nets():
    A = _conv()
    R = Radon(12, 8, circle=False)
    M = Matrix(torch.randn(10, 7, generator=torch.Generator().manual_seed(1), dtype=f64))
    return {
        "spectral": (lambda: SpectralFilterNet(A, lam=0.02), (16, 16)),
        "spectral-parametric": (lambda: SpectralFilterNet(A, parametric=True, hidden=4, dtype=f64), (16, 16)),
        "landweber-reflect": (lambda: UnrolledLandweber(_conv(boundary="reflect"), n_layers=2), (16, 16)),
        "spectral-matrix": (lambda: SpectralFilterNet(M, lam=0.1, dtype=f64), (10,)),
        "landweber": (lambda: UnrolledLandweber(A, n_layers=3), (16, 16)),
        "landweber-radon": (lambda: UnrolledLandweber(R, n_layers=2), R.out_shape),
        "ista": (lambda: UnrolledISTA(A, n_layers=2, channels=4), (16, 16)),
        "hqs": (lambda: UnrolledHQS(A, prior=Denoiser(depth=3, channels=4), n_layers=2), (16, 16)),
        "hqs-pretrained": (lambda: UnrolledHQS(A, n_layers=2), (16, 16)),
        "hqs-radon-cg": (lambda: UnrolledHQS(R, prior=Denoiser(depth=3, channels=4), n_layers=2, cg_iter=3),
                         R.out_shape),
        "lpd": (lambda: LearnedPrimalDual(R, n_iter=2, n_primal=2, n_dual=2, width=4), R.out_shape),
        "hybrid": (lambda: HybridNet(SpectralFilterNet(A), DnCNN(depth=3, channels=4)), (16, 16)),
        "dncnn": (lambda: DnCNN(depth=3, channels=4, residual=True), (16, 16)),
        "unet": (lambda: UNet(channels=4, levels=1), (16, 16)),
        "mlp": (lambda: MLP((6,), (3,), hidden=(5,)), (6,)),
        "data-driven": (lambda: DataDriven(UNet(channels=4, levels=1), A, input="adjoint"), (16, 16)),
        "denoiser": (lambda: Denoiser(depth=3, channels=4), (16, 16)),
        "unet-denoiser": (lambda: UNetDenoiser(channels=(4, 8), blocks=1), (15, 17)),
        "hqs-unet-prior": (lambda: UnrolledHQS(A, prior=UNetDenoiser(channels=(4, 8), blocks=1), n_layers=2),
                           (16, 16)),
    }


def _call(net, y):
    if isinstance(net, ResidualDenoiser) or getattr(net, "parametric", False):
        return net(y, 0.05)
    return net(y)


@pytest.mark.parametrize("name", sorted(_nets()))
def test_round_trip_rebuilds_the_same_network(name, tmp_path):
    make, shape = _nets()[name]
    net = make()
    _perturb(net)
    path = tmp_path / f"{name}.pt"
    save_net(net, path, metadata={"name": name, "psnr": 27.5, "sizes": [1, 2]})
    again, meta = load_net(path, with_metadata=True)
    assert type(again) is type(net)
    assert meta == {"name": name, "psnr": 27.5, "sizes": [1, 2]}
    a, b = net.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    dtype = next(net.parameters()).dtype
    y = torch.rand(2, *shape, generator=torch.Generator().manual_seed(3), dtype=dtype)
    with torch.no_grad():
        torch.testing.assert_close(_call(again, y), _call(net, y), rtol=0, atol=0)


def test_operator_is_rebuilt_from_its_config(tmp_path):
    A = _conv(sigma=2.0, boundary="reflect")
    save_net(UnrolledLandweber(A, n_layers=2), tmp_path / "n.pt")
    B = load_net(tmp_path / "n.pt").operator
    assert type(B) is Convolution and B.boundary == "reflect"
    x = torch.rand(16, 16, dtype=f64)
    torch.testing.assert_close(B(x), A(x))


def test_operator_override_builds_on_the_given_operator(tmp_path):
    A, other = _conv(sigma=1.0), _conv(sigma=2.5)
    net = SpectralFilterNet(A, parametric=True, hidden=4)
    _perturb(net)
    save_net(net, tmp_path / "n.pt")
    moved = load_net(tmp_path / "n.pt", operator=other)
    assert moved.operator is other
    # the learned filter came with the file; the physics is the given operator's
    torch.testing.assert_close(moved.filter_fn.mlp[0].weight, net.filter_fn.mlp[0].weight)
    y = torch.rand(16, 16)
    assert not torch.allclose(moved(y, 0.05), net(y, 0.05))
    reference = SpectralFilterNet(other, parametric=True, hidden=4)
    reference.load_state_dict(net.state_dict())
    torch.testing.assert_close(moved(y, 0.05), reference(y, 0.05), rtol=0, atol=0)


def test_operator_override_of_other_shapes_is_refused(tmp_path):
    save_net(SpectralFilterNet(_conv()), tmp_path / "n.pt")
    with pytest.raises(NetFileError, match=r"n\.pt.*\(16, 16\)"):
        load_net(tmp_path / "n.pt", operator=_conv(shape=(12, 12)))
    with pytest.raises(TypeError, match="operator must be"):
        load_net(tmp_path / "n.pt", operator="gaussian:2")


def test_device_argument_moves_the_network(tmp_path):
    save_net(DnCNN(depth=3, channels=4), tmp_path / "n.pt")
    net = load_net(tmp_path / "n.pt", device="cpu")
    assert next(net.parameters()).device.type == "cpu"


def test_damaged_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "n.pt"
    save_net(DnCNN(depth=3, channels=4), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(NetFileError, match=str(path.name)):
        load_net(path)
    path.write_bytes(bytes(data[: len(data) // 3]))  # truncated
    with pytest.raises(NetFileError, match=str(path.name)):
        load_net(path)
    with pytest.raises(FileNotFoundError):
        load_net(tmp_path / "missing.pt")


def test_training_checkpoint_is_told_apart(tmp_path):
    path = tmp_path / "ck.pt"
    atomic_save({"model": DnCNN(depth=3, channels=4).state_dict(), "step": 3}, path)
    with pytest.raises(NetFileError, match="training checkpoint"):
        load_net(path)
    atomic_save({"weights": 1}, path)
    with pytest.raises(NetFileError, match="not a physinv network file"):
        load_net(path)


def test_unknown_class_and_changed_signature_are_refused(tmp_path):
    path = tmp_path / "n.pt"
    config = net_config(DnCNN(depth=3, channels=4))
    atomic_save({"physinv_net": 1, "net": {"type": "NoSuchNet", "args": {}}, "state_dict": {}}, path)
    with pytest.raises(NetFileError, match="unknown network class 'NoSuchNet'"):
        load_net(path)
    config["args"]["width"] = 3
    atomic_save({"physinv_net": 1, "net": config, "state_dict": {}}, path)
    with pytest.raises(NetFileError, match="no constructor argument 'width'"):
        load_net(path)
    atomic_save({"physinv_net": 99, "net": config, "state_dict": {}}, path)
    with pytest.raises(NetFileError, match="version 99"):
        load_net(path)


def test_weights_that_do_not_fit_are_refused(tmp_path):
    path = tmp_path / "n.pt"
    state = DnCNN(depth=4, channels=4).state_dict()
    atomic_save({"physinv_net": 1, "net": net_config(DnCNN(depth=3, channels=4)), "state_dict": state}, path)
    with pytest.raises(NetFileError, match="do not fit"):
        load_net(path)


class _Affine(SavableModule):
    """A network of a user's own: savable because it derives from SavableModule."""

    def __init__(self, n: int, scale: float = 2.0, *, bias: bool = True) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(scale * torch.ones(n))
        self.b = torch.nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x):
        return x * self.w + (0 if self.b is None else self.b)


def test_user_network_round_trip(tmp_path):
    net = _Affine(4, scale=3.0, bias=True)
    _perturb(net)
    assert net_config(net) == {"type": f"{__name__}._Affine", "args": {"n": 4, "scale": 3.0, "bias": True}}
    save_net(net, tmp_path / "u.pt")
    again = load_net(tmp_path / "u.pt")
    x = torch.rand(4)
    torch.testing.assert_close(again(x), net(x))


def test_subclass_records_its_own_arguments():
    class Wider(_Affine):
        def __init__(self, n: int) -> None:
            super().__init__(2 * n, scale=1.0)

    cfg = net_config(Wider(3))
    assert cfg["args"] == {"n": 3}
    assert type(build_net(cfg)) is Wider and build_net(cfg).w.numel() == 6


def test_unsavable_networks_and_arguments_are_refused(tmp_path):
    path = tmp_path / "n.pt"
    with pytest.raises(TypeError, match="SavableModule"):
        save_net(torch.nn.Linear(2, 2), path)
    with pytest.raises(TypeError, match="factorization"):
        save_net(SpectralFilterNet(_conv().svd()), path)
    with pytest.raises(TypeError, match="refiner.*Conv2d"):
        save_net(HybridNet(SpectralFilterNet(_conv()), torch.nn.Conv2d(1, 1, 3, padding=1)), path)
    with pytest.raises(TypeError, match="metadata.*object"):
        save_net(DnCNN(depth=3, channels=4), path, metadata={"x": object()})
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        save_net("net", path)
    assert not os.path.exists(path)  # nothing written on refusal
