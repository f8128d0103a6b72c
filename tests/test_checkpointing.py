"""Gradient checkpointing of the unrolled networks: same outputs, same gradients, fewer saved activations."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv import psf
from physinv.nets import Denoiser, LearnedPrimalDual, UnrolledHQS, UnrolledISTA, load_net, save_net
from physinv.nets._record import init_record
from physinv.operators import Convolution, Radon


def _randomize(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights, so that no gradient is trivially zero (LPD's last layers start at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() > 1:
                p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype) / p[0].numel() ** 0.5)
    return net


def _hqs(checkpoint: bool, shared: bool = True, boundary: str = "circular") -> UnrolledHQS:
    torch.manual_seed(0)
    A = Convolution(psf.gaussian(1.2, 7), (12, 12), boundary=boundary)
    prior = Denoiser(depth=3, channels=4).double()
    net = UnrolledHQS(A, prior=prior, n_layers=3, noise_sigma=0.03, shared=shared, cg_iter=4,
                      checkpoint=checkpoint)
    return _randomize(net.double())


def _lpd(checkpoint: bool) -> LearnedPrimalDual:
    torch.manual_seed(0)
    return _randomize(LearnedPrimalDual(Radon(12, 5), n_iter=3, n_primal=3, n_dual=2, width=6,
                                        start="adjoint", checkpoint=checkpoint).double())


def _ista(checkpoint: bool, transform: str | None = "learned") -> UnrolledISTA:
    torch.manual_seed(0)
    A = Convolution(psf.gaussian(1.2, 7), (12, 12))
    lam = 0.05 if transform is None else 0.002  # some coefficients on either side of the thresholds
    net = UnrolledISTA(A, 3, transform=transform, lam=lam, channels=4, dtype=torch.float64,
                       checkpoint=checkpoint)
    return _randomize(net)


BUILDERS = {
    "hqs": _hqs,
    "hqs_per_layer_priors_cg": lambda c: _hqs(c, shared=False, boundary="reflect"),
    "lpd": _lpd,
    "ista_learned": _ista,
    "ista_pixel": lambda c: _ista(c, None),
}


def _grads(net: torch.nn.Module, y: torch.Tensor) -> tuple[torch.Tensor, dict, torch.Tensor]:
    y = y.clone().requires_grad_(True)
    out = net(y)
    (out.square().sum() + out.sum()).backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    return out.detach(), grads, y.grad.clone()


def _data(net: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(batch, *net.operator.out_shape, generator=g, dtype=torch.float64)


def _saved_bytes(net: torch.nn.Module, y: torch.Tensor) -> int:
    """Bytes of the distinct storages autograd keeps for backward during one forward."""
    keep = {p.untyped_storage().data_ptr() for p in net.parameters()}
    seen: dict[int, int] = {}
    held: list[torch.Tensor] = []  # keeps every seen storage alive, so no address is reused while counting

    def pack(t: torch.Tensor) -> torch.Tensor:
        held.append(t)
        if t.layout == torch.strided:
            s = t.untyped_storage()
            if s.data_ptr() not in keep:
                seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = net(y)
    out.sum().backward()
    return sum(seen.values())


@pytest.mark.parametrize("name", list(BUILDERS))
def test_checkpointing_gives_the_same_outputs_and_gradients(name):
    plain, ck = BUILDERS[name](False), BUILDERS[name](True)
    ck.load_state_dict(plain.state_dict())
    plain.train()
    ck.train()
    y = _data(plain)
    out0, g0, gy0 = _grads(plain, y)
    out1, g1, gy1 = _grads(ck, y)
    torch.testing.assert_close(out1, out0, rtol=1e-10, atol=1e-12)
    assert sorted(g1) == sorted(g0) and len(g0) == len(list(plain.parameters()))
    for k in g0:
        assert bool(g0[k].abs().max() > 0), k  # a real gradient, not a trivially zero one
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-9, atol=1e-12, msg=k)
    torch.testing.assert_close(gy1, gy0, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["hqs", "lpd", "ista_learned"])
def test_checkpointing_keeps_fewer_activations_and_only_in_training(name):
    plain, ck = BUILDERS[name](False), BUILDERS[name](True)
    ck.load_state_dict(plain.state_dict())
    y = _data(plain)
    plain.train()
    ck.train()
    full, lean = _saved_bytes(plain, y), _saved_bytes(ck, y)
    assert 0 < lean < full / 2
    # evaluation mode: no recomputation, the plain graph (gradients are still available)
    ck.eval()
    plain.eval()
    assert _saved_bytes(ck, y) == _saved_bytes(plain, y)
    # without gradients nothing is saved and the output is the same
    ck.train()
    with torch.no_grad():
        torch.testing.assert_close(ck(y), plain(y), rtol=1e-10, atol=1e-12)


def test_checkpoint_argument_is_recorded_and_round_trips(tmp_path):
    for name, build in (("hqs", _hqs), ("lpd", _lpd), ("ista", _ista)):
        net = build(True)
        assert init_record(net)[1]["checkpoint"] is True
        assert "checkpoint=True" in repr(net)
        path = tmp_path / f"{name}.pt"
        save_net(net, path)
        back = load_net(path).double()  # built in float32 (the nets were cast after construction)
        assert type(back) is type(net) and back.checkpoint is True
        y = _data(net)
        back.eval()
        net.eval()
        with torch.no_grad():
            torch.testing.assert_close(back(y), net(y))


@pytest.mark.parametrize("cls", ["hqs", "lpd", "ista"])
def test_checkpoint_must_be_a_bool(cls):
    A = Convolution(psf.gaussian(1.0, 5), (8, 8))
    with pytest.raises(TypeError, match="checkpoint must be a bool"):
        if cls == "hqs":
            UnrolledHQS(A, prior=Denoiser(depth=2, channels=2), n_layers=2, checkpoint="yes")
        elif cls == "lpd":
            LearnedPrimalDual(A, n_iter=1, width=2, checkpoint=1)
        else:
            UnrolledISTA(A, 2, checkpoint=None)


@settings(max_examples=8, deadline=None)
@given(n_layers=st.integers(1, 4), batch=st.integers(1, 3), learned=st.booleans(), seed=st.integers(0, 99))
def test_checkpointed_ista_matches_over_depths_and_batches(n_layers, batch, learned, seed):
    A = Convolution(psf.gaussian(1.0, 5), (8, 8))
    kind, lam = ("learned", 0.002) if learned else (None, 0.05)
    nets = [UnrolledISTA(A, n_layers, transform=kind, lam=lam, channels=3, dtype=torch.float64, checkpoint=c)
            for c in (False, True)]
    _randomize(nets[0], seed)
    nets[1].load_state_dict(nets[0].state_dict())
    y = torch.rand(batch, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    (o0, g0, gy0), (o1, g1, gy1) = (_grads(n.train(), y) for n in nets)
    torch.testing.assert_close(o1, o0, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gy1, gy0, rtol=1e-9, atol=1e-12)
    assert sorted(g0) == sorted(g1)
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], rtol=1e-9, atol=1e-12)
