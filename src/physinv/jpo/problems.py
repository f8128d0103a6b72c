"""Families of inverse problems for joint parameterized optimization, in a registry.

Each :class:`Problem` describes a family of small inverse problems: an
observation generator (seeded), the unknowns of each instance (``dim``
numbers), a starting-point rule, and the per-instance loss ``L_i(x)``,
evaluated in a batch: ``problem.loss(x, obs)`` takes ``x`` of shape
``(n, dim)`` and observations ``(n, *obs_shape)`` and returns the ``n``
losses, each depending only on its own row. One call therefore costs one
forward evaluation *per instance* in the batch; that is how every optimizer
in :mod:`physinv.jpo.optimize` counts its budget.

The families (:data:`PROBLEMS`):

``wave``
    Noisy wave packet ``A exp(-(t - t0)^2 / 2 s^2) cos(w (t - t0))`` on 64
    samples of ``[0, 10]`` (``s = 2``, ``w = 6``, noise std 0.1,
    ``t0`` in ``[3, 7]``, ``A`` in ``[0.5, 1.5]``); unknowns ``(t0, A)``;
    the least-squares misfit has a local minimum about every carrier
    period (about 1) in ``t0``.
``cosine``
    A loss landscape given by its coefficients:
    ``L_i(x) = lambda_i |x - x_i| + sum_j -A_ij cos(omega_ij x + phi_ij)``
    with three cosine terms (``x_i`` in ``[-5, 5]``, ``lambda_i`` in
    ``[0.3, 1]``, ``A_ij`` in ``[0, 0.5]``, ``omega_ij`` in ``[2, 8]``,
    ``phi_ij`` in ``[0, 2 pi]``); the observation is the coefficient vector.
``logistic``
    Chaos: the initial state of the logistic map ``z -> r z (1 - z)``,
    ``r = 3.9``, from ten noisy iterates ``z_1 .. z_10`` (noise std 0.005).
    The unknown is a phase ``u`` with ``z_0 = (1 - cos(pi u)) / 2`` (every
    real ``u`` is a valid state, so no optimizer can leave ``[0, 1]``).
``billiards``
    Zero gradients: a cue ball at the origin is shot at angle ``theta`` with
    speed ``v`` towards an object ball at ``(1, 0)`` (radii 0.05); on
    contact the object ball leaves along the line of centres with speed
    ``v cos(alpha)`` (``alpha`` the cut angle) and travels that distance.
    Loss: squared distance of its resting place to the target (the
    observation). A miss leaves the object ball where it is: the loss is
    constant there and its gradient is exactly zero. Every method starts
    from the naive shot straight at the target, which misses the object
    ball for most off-axis targets.
``blur``
    Imaging: the Gaussian blur width ``sigma`` and the horizontal shift
    ``dx`` of a known 32 x 32 bar-and-blob target from its blurred, shifted,
    noisy picture (noise std 0.02). The data are made with
    :class:`physinv.operators.Convolution` of :func:`physinv.psf.gaussian`
    (circular boundary, 17 x 17 kernel); the loss evaluates the same model
    through its transfer function, differentiable in ``sigma``. The bars
    (period 8 pixels) give a local minimum at every other period of ``dx``.

Examples
--------
>>> import torch
>>> p = get_problem("cosine")
>>> obs, truth = p.generate(3, seed=0)
>>> p.loss(p.start(obs), obs).shape
torch.Size([3])
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

__all__ = ["Problem", "PROBLEMS", "get_problem", "problem_names", "WavePacket", "CosineLandscape",
           "LogisticMap", "Billiards", "BlurShift", "logistic_iterates", "billiards_rest"]

_DTYPE = torch.float64


def _check_n_seed(n: int, seed: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")


def _gen(seed: int, salt: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + salt)


def _uniform(gen: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, dtype=_DTYPE)


class Problem(ABC):
    """A family of inverse problems: observations, unknowns, starting points and per-instance losses.

    Subclasses set :attr:`name`, :attr:`dim`, :attr:`obs_shape`,
    :attr:`param_names`, :attr:`scale` (a typical size of each unknown, used
    to scale a network's output) and implement :meth:`_generate`,
    :meth:`start` and :meth:`_loss`.

    Examples
    --------
    >>> p = get_problem("wave")
    >>> p.dim, p.obs_shape, p.param_names
    (2, (64,), ('t0', 'amplitude'))
    """

    name: str = ""
    dim: int = 1
    obs_shape: tuple[int, ...] = (1,)
    param_names: tuple[str, ...] = ("x",)
    scale: tuple[float, ...] = (1.0,)
    #: Adam learning rate of the JPO network for this family (physinv's choice, see docs/jpo.md).
    lr: float = 1e-2
    #: One-line description for tables and docs.
    summary: str = ""

    def generate(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` instances: observations ``(n, *obs_shape)`` and the true unknowns ``(n, dim)`` (float64).

        The same ``(n, seed)`` always gives the same instances.
        """
        _check_n_seed(n, seed)
        obs, truth = self._generate(n, seed)
        return obs.to(_DTYPE), truth.to(_DTYPE)

    @abstractmethod
    def start(self, obs: torch.Tensor) -> torch.Tensor:
        """The starting point ``(n, dim)`` of every method for the observations ``obs``."""

    def loss(self, x: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Per-instance losses ``(n,)`` of the unknowns ``x`` ``(n, dim)`` for the observations ``obs``."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must be a tensor of shape (n, {self.dim}), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        if (not isinstance(obs, torch.Tensor) or tuple(obs.shape[1:]) != self.obs_shape
                or obs.shape[0] != x.shape[0]):
            got = tuple(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
            raise ValueError(f"obs must be a tensor of shape ({x.shape[0]}, "
                             f"{', '.join(map(str, self.obs_shape))}), got {got}")
        return self._loss(x, obs)

    @abstractmethod
    def _generate(self, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Observations and true unknowns of ``n`` instances (the public :meth:`generate` checks)."""

    @abstractmethod
    def _loss(self, x: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Per-instance losses (the public :meth:`loss` checks the shapes)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, obs_shape={self.obs_shape})"


# ----------------------------------------------------------------------------- wave packet

class WavePacket(Problem):
    """Locate a noisy wave packet: unknowns ``(t0, A)`` of ``A exp(-(t-t0)^2/2s^2) cos(w (t-t0))``.

    Examples
    --------
    >>> import torch
    >>> p = WavePacket()
    >>> x = torch.tensor([[5.0, 1.0]], dtype=torch.float64)
    >>> s = p.signal(x)[0]
    >>> round(float(s.abs().max()), 3), float(s[0].abs()) < 0.01  # near A close to t0, ~0 far from it
    (0.945, True)
    """

    name = "wave"
    dim = 2
    obs_shape = (64,)
    param_names = ("t0", "amplitude")
    scale = (2.0, 0.3)
    summary = "noisy wave packet, unknowns (t0, A); local minima every half period"

    def __init__(self, n_samples: int = 64, width: float = 2.0, omega: float = 6.0,
                 noise: float = 0.1) -> None:
        self.t = torch.linspace(0.0, 10.0, n_samples, dtype=_DTYPE)
        self.obs_shape = (n_samples,)
        self.width, self.omega, self.noise = float(width), float(omega), float(noise)

    def signal(self, x: torch.Tensor) -> torch.Tensor:
        """The noise-free packet ``(n, n_samples)`` for unknowns ``x`` ``(n, 2)``."""
        d = self.t.to(x.dtype) - x[:, :1]
        return x[:, 1:2] * torch.exp(-d**2 / (2 * self.width**2)) * torch.cos(self.omega * d)

    def _generate(self, n, seed):
        g = _gen(seed, 11)
        truth = torch.stack([_uniform(g, n, 3.0, 7.0), _uniform(g, n, 0.5, 1.5)], 1)
        noise = self.noise * torch.randn(n, self.obs_shape[0], generator=g, dtype=_DTYPE)
        return self.signal(truth) + noise, truth

    def start(self, obs):
        return torch.tensor([[5.0, 1.0]], dtype=obs.dtype).expand(obs.shape[0], 2).clone()

    def _loss(self, x, obs):
        return ((self.signal(x) - obs) ** 2).mean(1)


# ----------------------------------------------------------------------------- cosine landscape

class CosineLandscape(Problem):
    """``L_i(x) = lambda_i |x - x_i| + sum_j -A_ij cos(omega_ij x + phi_ij)`` from its coefficients.

    The observation of an instance is ``(x_i, lambda_i, A_i1..J, omega_i1..J,
    phi_i1..J)``.

    Examples
    --------
    >>> import torch
    >>> p = CosineLandscape(n_terms=1)
    >>> obs = torch.tensor([[1.0, 0.5, 2.0, 3.0, 0.0]], dtype=torch.float64)
    >>> float(p.loss(torch.tensor([[0.0]], dtype=torch.float64), obs))  # 0.5*1 - 2*cos(0)
    -1.5
    """

    name = "cosine"
    dim = 1
    param_names = ("x",)
    scale = (3.0,)
    lr = 3e-2
    summary = "lambda |x - x_i| - sum_j A_ij cos(omega_ij x + phi_ij), 3 terms"

    def __init__(self, n_terms: int = 3) -> None:
        if not isinstance(n_terms, int) or n_terms < 1:
            raise ValueError(f"n_terms must be an int >= 1, got {n_terms!r}")
        self.n_terms = n_terms
        self.obs_shape = (2 + 3 * n_terms,)

    def _split(self, obs):
        J = self.n_terms
        return obs[:, 0:1], obs[:, 1:2], obs[:, 2:2 + J], obs[:, 2 + J:2 + 2 * J], obs[:, 2 + 2 * J:]

    def _generate(self, n, seed):
        g = _gen(seed, 23)
        J = self.n_terms
        xi = _uniform(g, n, -5.0, 5.0)[:, None]
        lam = _uniform(g, n, 0.3, 1.0)[:, None]
        amp = 0.5 * torch.rand(n, J, generator=g, dtype=_DTYPE)
        omega = 2.0 + 6.0 * torch.rand(n, J, generator=g, dtype=_DTYPE)
        phi = 2 * math.pi * torch.rand(n, J, generator=g, dtype=_DTYPE)
        return torch.cat([xi, lam, amp, omega, phi], 1), xi

    def start(self, obs):
        return torch.zeros(obs.shape[0], 1, dtype=obs.dtype)

    def _loss(self, x, obs):
        xi, lam, amp, omega, phi = self._split(obs)
        return (lam * (x - xi).abs()).squeeze(1) - (amp * torch.cos(omega * x + phi)).sum(1)


# ----------------------------------------------------------------------------- logistic map

def logistic_iterates(z0: torch.Tensor, r: float, n: int) -> torch.Tensor:
    """Iterates ``z_1 .. z_n`` of ``z -> r z (1 - z)`` from ``z0`` (shape ``(m,)``): shape ``(m, n)``.

    Examples
    --------
    >>> import torch
    >>> logistic_iterates(torch.tensor([0.5], dtype=torch.float64), 4.0, 3)
    tensor([[1., 0., 0.]], dtype=torch.float64)
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    out, z = [], z0
    for _ in range(n):
        z = r * z * (1 - z)
        out.append(z)
    return torch.stack(out, -1)


class LogisticMap(Problem):
    """Initial state of the chaotic logistic map from its noisy iterates; unknown phase ``u``.

    ``z_0 = (1 - cos(pi u)) / 2``; the loss is the mean squared misfit of
    ``z_1 .. z_n``.

    Examples
    --------
    >>> import torch
    >>> p = LogisticMap(noise=0.0)
    >>> obs, truth = p.generate(2, seed=0)
    >>> bool((p.loss(truth, obs) < 1e-20).all())
    True
    """

    name = "logistic"
    dim = 1
    param_names = ("u",)
    scale = (0.3,)
    summary = "logistic map r=3.9: initial state from 10 noisy iterates (chaos)"

    def __init__(self, r: float = 3.9, n_steps: int = 10, noise: float = 0.005) -> None:
        self.r, self.n_steps, self.noise = float(r), int(n_steps), float(noise)
        self.obs_shape = (self.n_steps,)

    @staticmethod
    def state(u: torch.Tensor) -> torch.Tensor:
        """``z_0 = (1 - cos(pi u)) / 2``."""
        return (1 - torch.cos(math.pi * u)) / 2

    def _generate(self, n, seed):
        g = _gen(seed, 37)
        u = _uniform(g, n, 0.05, 0.95)[:, None]
        z = logistic_iterates(self.state(u[:, 0]), self.r, self.n_steps)
        return z + self.noise * torch.randn(z.shape, generator=g, dtype=_DTYPE), u

    def start(self, obs):
        return torch.full((obs.shape[0], 1), 0.3, dtype=obs.dtype)

    def _loss(self, x, obs):
        return ((logistic_iterates(self.state(x[:, 0]), self.r, self.n_steps) - obs) ** 2).mean(1)


# ----------------------------------------------------------------------------- billiards

def billiards_rest(theta: torch.Tensor, speed: torch.Tensor, *, ball: tuple[float, float] = (1.0, 0.0),
                   radius: float = 0.05, friction: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Resting place ``(m, 2)`` of the object ball and whether the shot hit it ``(m,)`` (bool).

    The cue ball starts at the origin and rolls along ``(cos theta, sin
    theta)``; it hits the object ball (centre ``ball``, both of radius
    ``radius``) when the line passes within ``2 radius`` of that centre in
    front of the cue. The object ball then moves along the line of centres
    at contact with speed ``speed cos(alpha)`` and travels ``friction``
    times that speed. On a miss it stays at ``ball``.

    Examples
    --------
    >>> import torch
    >>> d = torch.float64
    >>> pos, hit = billiards_rest(torch.tensor([0.0], dtype=d), torch.tensor([0.5], dtype=d))
    >>> pos.tolist(), hit.tolist()
    ([[1.5, 0.0]], [True])
    >>> billiards_rest(torch.tensor([0.2], dtype=d), torch.tensor([0.5], dtype=d))[1].tolist()
    [False]
    """
    bx, by = float(ball[0]), float(ball[1])
    ux, uy = torch.cos(theta), torch.sin(theta)
    along = bx * ux + by * uy                       # distance to the foot of the perpendicular
    off = bx * uy - by * ux                         # signed distance of the centre from the line
    reach = 2.0 * radius
    hit = (off.abs() < reach) & (along > reach)
    sin_a = torch.where(hit, off / reach, torch.zeros_like(off))
    cos_a = torch.sqrt(torch.clamp(1 - sin_a**2, min=1e-12))
    s = along - reach * cos_a                       # cue travel to contact
    nx = (bx - s * ux) / reach                      # unit line of centres at contact
    ny = (by - s * uy) / reach
    d = friction * speed * cos_a
    pos = torch.stack([bx + torch.where(hit, d * nx, torch.zeros_like(d)),
                       by + torch.where(hit, d * ny, torch.zeros_like(d))], -1)
    return pos, hit


class Billiards(Problem):
    """Shoot the cue ball (angle, speed) so that the object ball comes to rest on the target.

    Examples
    --------
    >>> import torch
    >>> p = Billiards()
    >>> obs, truth = p.generate(4, seed=1)
    >>> bool((p.loss(truth, obs) < 1e-20).all())
    True
    """

    name = "billiards"
    dim = 2
    obs_shape = (2,)
    param_names = ("theta", "speed")
    scale = (0.05, 0.3)
    summary = "billiards shot (angle, speed) to a target; exactly flat loss on a miss"

    def __init__(self, radius: float = 0.05, friction: float = 1.0) -> None:
        self.radius, self.friction = float(radius), float(friction)

    def rest(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`billiards_rest` of the unknowns ``x = (theta, speed)``."""
        return billiards_rest(x[:, 0], x[:, 1], radius=self.radius, friction=self.friction)

    def _generate(self, n, seed):
        g = _gen(seed, 41)
        sin_a = _uniform(g, n, -0.8, 0.8)
        theta = torch.asin(2 * self.radius * sin_a)     # ball at distance 1 on the x axis
        speed = _uniform(g, n, 0.5, 1.5)
        truth = torch.stack([theta, speed], 1)
        return self.rest(truth)[0], truth

    def start(self, obs):
        """The naive shot: aim at the target, with the speed of its distance from the object ball.

        Off-axis targets make this shot miss the object ball, where the loss is
        flat: a per-instance optimizer started there cannot move.
        """
        theta = torch.atan2(obs[:, 1], obs[:, 0])
        speed = (obs - torch.tensor([1.0, 0.0], dtype=obs.dtype)).norm(dim=1)
        return torch.stack([theta, speed], 1)

    def _loss(self, x, obs):
        return ((self.rest(x)[0] - obs) ** 2).sum(1)


# ----------------------------------------------------------------------------- blur width and shift

def _bar_target(n: int) -> torch.Tensor:
    j = torch.arange(n, dtype=_DTYPE)
    bars = 0.5 + 0.3 * torch.cos(2 * math.pi * j / 8.0)
    yy, xx = torch.meshgrid(j, j, indexing="ij")
    blob = 0.4 * torch.exp(-((yy - 0.4 * n) ** 2 + (xx - 0.6 * n) ** 2) / (2 * 3.0**2))
    return bars[None, :].expand(n, n) + blob


class BlurShift(Problem):
    """Blur width and horizontal shift of a known target from its blurred, shifted, noisy picture.

    Parameters
    ----------
    size : int
        Image side (default 32).
    kernel : int
        Side of the Gaussian kernel (odd; default 17, enough for ``sigma <= 2.7``).
    noise : float
        White noise std of the data.

    Examples
    --------
    >>> import torch
    >>> p = BlurShift(noise=0.0)
    >>> obs, truth = p.generate(2, seed=0)
    >>> bool((p.loss(truth, obs) < 1e-20).all())
    True
    """

    name = "blur"
    dim = 2
    param_names = ("sigma", "dx")
    scale = (0.5, 3.0)
    summary = "Gaussian blur width and shift of a known bar target (32 x 32)"

    def __init__(self, size: int = 32, kernel: int = 17, noise: float = 0.02) -> None:
        if kernel % 2 != 1 or kernel > size:
            raise ValueError(f"kernel must be an odd int <= size, got {kernel!r}")
        self.size, self.kernel, self.noise = int(size), int(kernel), float(noise)
        self.obs_shape = (self.size, self.size)
        self.target = _bar_target(self.size)
        self._target_ft = torch.fft.fft2(self.target)
        k = torch.fft.fftfreq(self.size, dtype=_DTYPE) * self.size   # integer frequencies
        self._kx = k

    def transfer(self, sigma: torch.Tensor) -> torch.Tensor:
        """1-D DFT ``(m, size)`` of the normalised, truncated, centred Gaussian of width ``sigma`` ``(m,)``.

        The 2-D transfer function of ``Convolution(gaussian(sigma, kernel), (size, size))``
        is the outer product of this with itself.
        """
        h = self.kernel // 2
        r = torch.arange(-h, h + 1, dtype=sigma.dtype)
        g = torch.exp(-(r[None, :] ** 2) / (2 * sigma[:, None] ** 2 + 1e-300))
        g = g / g.sum(1, keepdim=True)
        line = torch.zeros(sigma.shape[0], self.size, dtype=sigma.dtype)
        line[:, : self.kernel] = g
        line = torch.roll(line, shifts=-h, dims=1)
        return torch.fft.fft(line)

    def shift(self, img_ft: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        """Multiply spectra ``(m, H, W)`` by the phase of a shift by ``dx`` ``(m,)`` pixels along x."""
        phase = torch.exp(-2j * math.pi * self._kx.to(dx.dtype)[None, :] * dx[:, None] / self.size)
        return img_ft * phase[:, None, :]

    def model(self, x: torch.Tensor) -> torch.Tensor:
        """Noise-free picture ``(m, size, size)`` for unknowns ``x = (sigma, dx)``."""
        G = self.transfer(x[:, 0])
        ft = self._target_ft[None] * G[:, :, None] * G[:, None, :]
        return torch.fft.ifft2(self.shift(ft, x[:, 1])).real

    def _generate(self, n, seed):
        from ..operators import Convolution
        from ..psf import gaussian

        g = _gen(seed, 53)
        sigma = _uniform(g, n, 0.8, 2.5)
        dx = _uniform(g, n, -8.0, 8.0)
        noise = self.noise * torch.randn(n, self.size, self.size, generator=g, dtype=_DTYPE)
        pics = []
        for s in sigma.tolist():
            A = Convolution(gaussian(s, self.kernel), (self.size, self.size), "circular")
            pics.append(A(self.target))
        blurred = torch.stack(pics)
        shifted = torch.fft.ifft2(self.shift(torch.fft.fft2(blurred), dx)).real
        return shifted + noise, torch.stack([sigma, dx], 1)

    def start(self, obs):
        return torch.tensor([[1.6, 0.0]], dtype=obs.dtype).expand(obs.shape[0], 2).clone()

    def _loss(self, x, obs):
        return ((self.model(x) - obs) ** 2).mean((1, 2))


#: The registry: name -> constructor of the problem with its default settings.
PROBLEMS: dict[str, Callable[[], Problem]] = {
    "wave": WavePacket,
    "cosine": CosineLandscape,
    "logistic": LogisticMap,
    "billiards": Billiards,
    "blur": BlurShift,
}

_CACHE: dict[str, Problem] = {}


def problem_names() -> tuple[str, ...]:
    """Names of the registered problems.

    Examples
    --------
    >>> problem_names()
    ('wave', 'cosine', 'logistic', 'billiards', 'blur')
    """
    return tuple(PROBLEMS)


def get_problem(name: str) -> Problem:
    """The registered problem ``name`` with its default settings (one shared instance per name).

    Examples
    --------
    >>> get_problem("billiards").param_names
    ('theta', 'speed')
    >>> get_problem("nope")
    Traceback (most recent call last):
        ...
    ValueError: problem must be one of ['wave', 'cosine', 'logistic', 'billiards', 'blur'], got 'nope'
    """
    if name not in PROBLEMS:
        raise ValueError(f"problem must be one of {list(PROBLEMS)}, got {name!r}")
    if name not in _CACHE:
        _CACHE[name] = PROBLEMS[name]()
    return _CACHE[name]
