"""The EDM formulation (Karras et al., 2022) as PYoCo uses it (Section 3, eqs. 1-2).

Everything here works on *any* denoiser callable ``denoiser(x, sigma) -> x0_hat``, where ``x`` is
an image batch (B, C, H, W) or a video batch (B, F, C, H, W) and ``sigma`` is a tensor of shape
(B,) -- one noise level per sample. The same code therefore samples from a U-Net, and inverts
or samples an analytic Gaussian denoiser in the tests (k-diffusion's design).

Contents, one function per algorithm:

- :class:`Denoiser` -- preconditioning D(x; sigma) = c_skip x + c_out F(c_in x; c_noise).
- :func:`sample_training_sigma`, :func:`loss_weight`, :func:`edm_loss` -- eq. 1, with the noise
  epsilon drawn from a *chosen prior* (i.i.d., mixed or progressive) by the caller.
- :func:`karras_sigmas` -- the sigma discretisation of EDM eq. 5.
- ODE solvers for eq. 2, dx/dsigma = (x - D(x; sigma)) / sigma: :func:`sample_euler`,
  :func:`sample_heun` (EDM Algorithm 1), :func:`sample_deis` (DEIS multistep, tAB / rhoAB),
  :func:`sample_rk3` (DEIS "3kutta"), and the stochastic sampler :func:`sample_stochastic`
  (EDM Algorithm 2) whose fresh noise comes from a pluggable ``noise_sampler`` so that it can
  be correlated across frames.
- :func:`invert` -- integrate eq. 2 from sigma_min *up* to sigma_max to turn real frames into
  noise maps (Fig. 2, Table 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from pyoco_lab import devices
from pyoco_lab.progress import tqdm

SIGMA_DATA = 0.5
P_MEAN, P_STD = -1.2, 1.2
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0

DenoiserFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseSampler = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def expand_sigma(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """Reshape per-sample sigma (B,) (or a scalar) so it broadcasts over x (B, ...)."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(x.shape[0])
    return sigma.reshape(-1, *([1] * (x.ndim - 1)))


def _batch_sigma(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """A (B,) float32 tensor of sigma for the batch x."""
    return torch.as_tensor(sigma, dtype=torch.float32, device=x.device).reshape(-1).expand(x.shape[0])


# ----------------------------------------------------------------------------------------------
# Preconditioning and training loss (Section 3; EDM Table 1)


def precondition_coefficients(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA):
    """(c_skip, c_out, c_in, c_noise) of EDM: D = (sd/s*)² x + (s sd / s*) F(x / s*, ln(s)/4)."""
    sigma = sigma.to(torch.float32)
    sigma_star = (sigma**2 + sigma_data**2).sqrt()
    c_skip = sigma_data**2 / sigma_star**2
    c_out = sigma * sigma_data / sigma_star
    c_in = 1.0 / sigma_star
    c_noise = sigma.log() / 4.0
    return c_skip, c_out, c_in, c_noise


class Denoiser(nn.Module):
    """D(x; e, sigma) = c_skip x + c_out F_theta(c_in x; e, c_noise), Section 3 of the paper.

    ``net(x_in, c_noise, **cond)`` is the raw network F_theta; ``c_noise`` has shape (B,).
    Inputs and sigma are taken in float32 (as EDM does) so that bf16 autocast only affects the
    network's interior.
    """

    def __init__(self, net: nn.Module, sigma_data: float = SIGMA_DATA):
        super().__init__()
        self.net = net
        self.sigma_data = float(sigma_data)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, **cond) -> torch.Tensor:
        x = x.to(torch.float32)
        sigma = _batch_sigma(sigma, x)
        c_skip, c_out, c_in, c_noise = precondition_coefficients(sigma, self.sigma_data)
        out = self.net(expand_sigma(c_in, x) * x, c_noise, **cond)
        return expand_sigma(c_skip, x) * x + expand_sigma(c_out, x) * out.to(torch.float32)


def sample_training_sigma(
    batch_size: int,
    *,
    p_mean: float = P_MEAN,
    p_std: float = P_STD,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """ln(sigma) ~ N(P_mean, P_std²) with P_mean = -1.2, P_std = 1.2 (Section 3)."""
    z = torch.randn(batch_size, generator=generator, device=device)
    return (z * p_std + p_mean).exp()


def loss_weight(sigma: torch.Tensor, sigma_data: float = SIGMA_DATA) -> torch.Tensor:
    """lambda(sigma) = (sigma² + sigma_data²) / (sigma sigma_data)², eq. 1."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def edm_loss(
    denoiser: DenoiserFn,
    x_clean: torch.Tensor,
    noise: torch.Tensor,
    sigma: torch.Tensor,
    sigma_data: float = SIGMA_DATA,
    **cond,
) -> torch.Tensor:
    """Per-sample loss of eq. 1: lambda(sigma) ||D(x + sigma eps; sigma) - x||², shape (B,).

    ``noise`` is epsilon already drawn from the chosen prior -- this is the one place where PYoCo
    differs from EDM, whose epsilon is always i.i.d. The squared error is averaged (not summed)
    over elements so the loss scale does not depend on resolution or frame count.
    """
    if noise.shape != x_clean.shape:
        raise ValueError(f"noise shape {tuple(noise.shape)} must equal x_clean shape {tuple(x_clean.shape)}")
    sigma = _batch_sigma(sigma, x_clean)
    x_noisy = x_clean + expand_sigma(sigma, x_clean) * noise
    denoised = denoiser(x_noisy, sigma, **cond)
    squared_error = (denoised - x_clean) ** 2
    return loss_weight(sigma, sigma_data) * squared_error.flatten(1).mean(dim=1)


def guided_denoiser(denoiser, guidance_scale: float, cond: dict, uncond: dict) -> DenoiserFn:
    """Classifier-free guidance: D_w = D_uncond + w (D_cond - D_uncond) (w = 1: no guidance)."""

    def guided(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        conditional = denoiser(x, sigma, **cond)
        if guidance_scale == 1.0:
            return conditional
        unconditional = denoiser(x, sigma, **uncond)
        return unconditional + guidance_scale * (conditional - unconditional)

    return guided


# ----------------------------------------------------------------------------------------------
# Noise levels


def karras_sigmas(
    num_steps: int,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """EDM eq. 5: sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho, then 0.

    Returns num_steps + 1 values in float64, decreasing, ending with sigma_N = 0.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")
    if num_steps == 1:
        ramp = torch.zeros(1, dtype=torch.float64)
    else:
        ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    inv_rho = 1.0 / rho
    sigmas = (sigma_max**inv_rho + ramp * (sigma_min**inv_rho - sigma_max**inv_rho)) ** rho
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float64)]).to(device)


# ----------------------------------------------------------------------------------------------
# ODE steps for eq. 2. Each works whichever way sigma moves, so sampling (sigma decreasing) and
# inversion (sigma increasing) share them.


def ode_derivative(denoiser: DenoiserFn, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """dx/dsigma = (x - D(x; sigma)) / sigma, eq. 2 (this is DEIS's epsilon-hat)."""
    return (x - denoiser(x, _batch_sigma(sigma, x))) / sigma


def euler_step(denoiser: DenoiserFn, x: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    return x + (sigma_next - sigma) * ode_derivative(denoiser, x, sigma)


def heun_step(denoiser: DenoiserFn, x: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """EDM Algorithm 1, lines 4-8: Euler predictor, trapezoidal corrector (not into sigma = 0)."""
    d = ode_derivative(denoiser, x, sigma)
    x_euler = x + (sigma_next - sigma) * d
    if sigma_next == 0:
        return x_euler
    d_next = ode_derivative(denoiser, x_euler, sigma_next)
    return x + (sigma_next - sigma) * 0.5 * (d + d_next)


def rk3_step(denoiser: DenoiserFn, x: torch.Tensor, sigma: float, sigma_next: float) -> torch.Tensor:
    """Kutta's third-order Runge-Kutta on dx/dsigma (DEIS "3kutta"; with churn, the paper's A.3 sampler).

    Tableau c = (0, 1/2, 1), a21 = 1/2, a31 = -1, a32 = 2, b = (1/6, 4/6, 1/6). The last stage
    would evaluate the derivative at sigma = 0, where it is undefined, so a step into 0 is Euler.
    """
    h = sigma_next - sigma
    k1 = ode_derivative(denoiser, x, sigma)
    if sigma_next == 0:
        return x + h * k1
    k2 = ode_derivative(denoiser, x + 0.5 * h * k1, sigma + 0.5 * h)
    k3 = ode_derivative(denoiser, x + h * (-k1 + 2.0 * k2), sigma_next)
    return x + h * (k1 + 4.0 * k2 + k3) / 6.0


STEPS = {"euler": euler_step, "heun": heun_step, "rk3": rk3_step, "3kutta": rk3_step}


def solve_ode(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    step: str = "heun",
    *,
    progress: bool = False,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Integrate eq. 2 through the noise levels ``sigmas`` (either direction) with a one-step rule."""
    if step not in STEPS:
        raise ValueError(f"unknown ODE step {step!r}; choose one of {', '.join(STEPS)}")
    step_fn = STEPS[step]
    levels = [float(s) for s in sigmas]
    for i in tqdm(range(len(levels) - 1), disable=not progress, desc=f"{step} ODE", leave=False):
        x = step_fn(denoiser, x, levels[i], levels[i + 1])
        if callback is not None:
            callback(i, x)
    return x


# ----------------------------------------------------------------------------------------------
# DEIS (Zhang & Chen, 2022): Adams-Bashforth on dx/dsigma = eps_hat with a Lagrange polynomial
# of past eps_hat values. "tAB" fits the polynomial in VP time t, "rhoAB" in sigma itself. For the
# EDM (variance-exploding) parameterisation the linear part of the ODE is zero, so
# x_{i+1} = x_i + sum_j C_ij eps_hat_{i-j}, C_ij = int l_j(tau) dsigma. This multistep family is
# *not* the paper's UCF sampler: A.3 uses *stochastic* DEIS with the single-step "3kutta" rule,
# i.e. sample_stochastic(step="rk3") with 25 steps (docs/metrics.md "Samplers").

VP_BETA_MIN, VP_BETA_D = 0.1, 19.9  # the VP schedule EDM uses to relate sigma and t


def sigma_to_vp_time(sigma: np.ndarray) -> np.ndarray:
    """t(sigma) of the VP SDE, inverse of sigma(t) = sqrt(exp(beta_d t²/2 + beta_min t) - 1)."""
    log_term = np.log1p(np.asarray(sigma, dtype=np.float64) ** 2)
    return (np.sqrt(VP_BETA_MIN**2 + 2.0 * VP_BETA_D * log_term) - VP_BETA_MIN) / VP_BETA_D


def vp_time_to_sigma(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    return np.sqrt(np.expm1(0.5 * VP_BETA_D * t**2 + VP_BETA_MIN * t))


def deis_coefficients(sigmas: torch.Tensor, order: int = 3, variant: str = "tab") -> list[list[float]]:
    """Adams-Bashforth weights C[i][j] for step i and history eps_hat_{i-j}, j < min(order, i+1).

    C_ij = int_{sigma_i}^{sigma_{i+1}} l_j(tau(sigma)) dsigma, where l_j is the Lagrange basis
    through the nodes tau_i, ..., tau_{i-k+1} and tau = t(sigma) ("tab") or sigma ("rhoab").
    The integral is taken with 64-node Gauss-Legendre quadrature: exact for rhoab and far below
    solver error for tab.
    """
    if order not in (1, 2, 3):
        raise ValueError(f"DEIS order must be 1, 2 or 3, got {order}")
    if variant not in ("tab", "rhoab"):
        raise ValueError(f"DEIS variant must be 'tab' or 'rhoab', got {variant!r}")
    s = sigmas.detach().cpu().double().numpy()
    to_tau = sigma_to_vp_time if variant == "tab" else (lambda v: v)
    tau = to_tau(s)
    # Integrate in sigma, where the integrand l_j(tau(sigma)) is smooth even at sigma = 0
    # (in t the Jacobian dsigma/dt blows up like t^(-1/2) there).
    nodes, weights = np.polynomial.legendre.leggauss(64)
    coefficients = []
    for i in range(len(s) - 1):
        k = min(order, i + 1)
        history = tau[i - np.arange(k)]  # tau_i, tau_{i-1}, ...
        q = 0.5 * (s[i + 1] - s[i]) * nodes + 0.5 * (s[i] + s[i + 1])  # quadrature nodes in sigma
        tau_q = to_tau(q)
        row = []
        for j in range(k):
            basis = np.ones_like(q)
            for m in range(k):
                if m != j:
                    basis *= (tau_q - history[m]) / (history[j] - history[m])
            row.append(float(0.5 * (s[i + 1] - s[i]) * np.sum(weights * basis)))
        coefficients.append(row)
    return coefficients


def solve_ode_deis(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    order: int = 3,
    variant: str = "tab",
    *,
    progress: bool = False,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """DEIS multistep integration of eq. 2 through ``sigmas`` (either direction)."""
    coefficients = deis_coefficients(sigmas, order, variant)
    levels = [float(s) for s in sigmas]
    history: list[torch.Tensor] = []
    for i in tqdm(range(len(levels) - 1), disable=not progress, desc=f"DEIS-{variant}{order}", leave=False):
        history.insert(0, ode_derivative(denoiser, x, levels[i]))
        del history[order:]
        x = x + sum(c * eps for c, eps in zip(coefficients[i], history, strict=False))
        if callback is not None:
            callback(i, x)
    return x


# ----------------------------------------------------------------------------------------------
# Samplers: start from unit-variance ``noise`` (any prior) scaled to sigma_0, integrate to 0.


def sample_euler(denoiser, noise, sigmas, *, progress=False, callback=None) -> torch.Tensor:
    """First-order Euler sampler for eq. 2."""
    return solve_ode(
        denoiser, noise * float(sigmas[0]), sigmas, "euler", progress=progress, callback=callback
    )


def sample_heun(denoiser, noise, sigmas, *, progress=False, callback=None) -> torch.Tensor:
    """EDM Algorithm 1 (deterministic Heun, Euler on the last step into sigma = 0)."""
    return solve_ode(denoiser, noise * float(sigmas[0]), sigmas, "heun", progress=progress, callback=callback)


def sample_rk3(denoiser, noise, sigmas, *, progress=False, callback=None) -> torch.Tensor:
    """Deterministic DEIS "3kutta": Kutta's RK3 on eq. 2 (Table F's super-resolution sampler).

    The paper's UCF-101 (A.3) and base-model (Table F) sampler is the *stochastic* version:
    :func:`sample_stochastic` with ``step="rk3"``.
    """
    return solve_ode(denoiser, noise * float(sigmas[0]), sigmas, "rk3", progress=progress, callback=callback)


def sample_deis(
    denoiser, noise, sigmas, *, order: int = 3, variant: str = "tab", progress=False, callback=None
) -> torch.Tensor:
    """DEIS multistep sampler (tAB by default, orders 1-3) for the EDM parameterisation (deterministic;
    not the paper's UCF sampler, see :func:`sample_stochastic`)."""
    return solve_ode_deis(
        denoiser, noise * float(sigmas[0]), sigmas, order, variant, progress=progress, callback=callback
    )


def iid_noise_sampler(generator: torch.Generator | None = None) -> NoiseSampler:
    """The default fresh-noise source of the stochastic sampler: i.i.d. N(0, I) like x."""

    def draw(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        where = devices.draw_device(generator, x.device)
        return torch.randn(x.shape, generator=generator, device=where, dtype=x.dtype).to(x.device)

    return draw


def prior_noise_sampler(prior, generator: torch.Generator | None = None) -> NoiseSampler:
    """Fresh churn noise correlated across frames by a :class:`pyoco_lab.noise.NoisePrior`."""

    def draw(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"a video noise prior needs x shaped (B, F, C, H, W), got {tuple(x.shape)}")
        where = devices.draw_device(generator, x.device)
        return prior.sample(x.shape, generator=generator, device=where, dtype=x.dtype).to(x.device)

    return draw


def sample_stochastic(
    denoiser: DenoiserFn,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
    step: str = "heun",
    noise_sampler: NoiseSampler | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    callback=None,
) -> torch.Tensor:
    """EDM Algorithm 2: raise sigma_i to sigma_hat = (1 + gamma) sigma_i with fresh noise, then
    take one ODE step (Heun as in EDM, or "rk3" for the paper's stochastic DEIS 3kutta: A.3, 25
    steps; the paper gives no churn values, the ucf preset uses EDM's ImageNet-64 ones).

    gamma = min(S_churn / N, sqrt(2) - 1) for sigma_i in [S_tmin, S_tmax], else 0. The fresh noise
    comes from ``noise_sampler(x, sigma)`` (default i.i.d.), so it can follow the video prior.
    """
    if step not in STEPS:
        raise ValueError(f"unknown ODE step {step!r}; choose one of {', '.join(STEPS)}")
    step_fn = STEPS[step]
    draw = noise_sampler or iid_noise_sampler(generator)
    levels = [float(s) for s in sigmas]
    num_steps = len(levels) - 1
    x = noise * levels[0]
    for i in tqdm(range(num_steps), disable=not progress, desc="stochastic", leave=False):
        sigma, sigma_next = levels[i], levels[i + 1]
        gamma = min(s_churn / num_steps, math.sqrt(2.0) - 1.0) if s_tmin <= sigma <= s_tmax else 0.0
        sigma_hat = sigma * (1.0 + gamma)
        if gamma > 0:
            fresh = draw(x, torch.as_tensor(sigma_hat))
            x = x + math.sqrt(sigma_hat**2 - sigma**2) * s_noise * fresh
        x = step_fn(denoiser, x, sigma_hat, sigma_next)
        if callback is not None:
            callback(i, x)
    return x


SAMPLERS = {
    "euler": sample_euler,
    "heun": sample_heun,
    "rk3": sample_rk3,
    "deis": sample_deis,
    "stochastic": sample_stochastic,
}


@torch.no_grad()
def sample(
    denoiser: DenoiserFn,
    noise: torch.Tensor,
    *,
    sampler: str = "heun",
    num_steps: int = 18,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    progress: bool = False,
    **sampler_options,
) -> torch.Tensor:
    """Generate x0 from unit-variance ``noise`` with one of :data:`SAMPLERS` on a Karras schedule.

    ``sampler_options`` go to the sampler: ``order``/``variant`` for DEIS; ``s_churn``,
    ``s_tmin``, ``s_tmax``, ``s_noise``, ``step``, ``noise_sampler``, ``generator`` for the
    stochastic sampler.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    sigmas = karras_sigmas(num_steps, sigma_min, sigma_max, rho)
    return SAMPLERS[sampler](denoiser, noise, sigmas, progress=progress, **sampler_options)


# ----------------------------------------------------------------------------------------------
# Inversion (Fig. 2, Table 1): real frames -> noise maps.


@torch.no_grad()
def invert(
    denoiser: DenoiserFn,
    x0: torch.Tensor,
    *,
    num_steps: int = 32,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    rho: float = RHO,
    solver: str = "heun",
    frames_as_batch: bool = False,
    progress: bool = False,
    callback: Callable[[int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Integrate eq. 2 from sigma_min up to sigma_max starting at x0; return x(sigma_max)/sigma_max.

    The ODE divides by sigma, so it starts at sigma_min > 0 with x(sigma_min) = x0 (an error of
    order sigma_min). The schedule is the Karras one reversed, so sampling back with the same
    solver and ``num_steps`` retraces it. ``solver`` is "euler", "heun", "rk3" or "deis".
    ``frames_as_batch=True`` folds the frames of a video (B, F, C, H, W) into the batch, so an
    *image* denoiser inverts every frame independently in one batched pass (Section 4). ``callback(i, x)``
    after each of the ``num_steps - 1`` ODE steps (progress).
    """
    sigmas = karras_sigmas(num_steps, sigma_min, sigma_max, rho)[:-1].flip(0)  # sigma_min -> sigma_max
    x = x0 if x0.dtype == torch.float64 else x0.to(torch.float32)  # float64 kept for exactness tests
    if frames_as_batch:
        if x.ndim != 5:
            raise ValueError(f"frames_as_batch needs a video (B, F, C, H, W), got shape {tuple(x.shape)}")
        batch = x.shape[0]
        x = x.flatten(0, 1)
    if solver == "deis":
        x = solve_ode_deis(denoiser, x, sigmas, progress=progress, callback=callback)
    else:
        x = solve_ode(denoiser, x, sigmas, solver, progress=progress, callback=callback)
    noise = x / sigma_max
    if frames_as_batch:
        noise = noise.unflatten(0, (batch, -1))
    return noise
