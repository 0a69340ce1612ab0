"""The affinity prior: its covariance, its closed-form KL and its samples; the Laplace prior's
closed-form KL and draws."""

from __future__ import annotations

import torch
from torch.distributions import Laplace, MultivariateNormal, Normal
from torch.distributions import kl_divergence as torch_kl

from vidgen.models import kl_divergence
from vidgen.models.laplace import laplace_from_normal, laplace_kl
from vidgen.models.priors import affinity_scale_tril, correlated_kl, sample_correlated


def two_squares() -> torch.Tensor:
    """A 16 px frame: a red square on the left, a green one on the right, black elsewhere."""
    frame = torch.zeros(1, 3, 16, 16)
    frame[0, 0, 4:12, 0:6] = 1.0
    frame[0, 1, 4:12, 10:16] = 1.0
    return frame


def test_affinity_correlates_the_cells_of_one_thing():
    scale_tril = affinity_scale_tril(two_squares(), (4, 4))
    cov = (scale_tril @ scale_tril.transpose(1, 2))[0]
    assert torch.allclose(cov.diagonal(), torch.ones(16), atol=1e-5)  # N(0, 1) marginals
    assert torch.allclose(cov, cov.T, atol=1e-6)
    cell = lambda y, x: 4 * y + x  # noqa: E731
    assert cov[cell(1, 0), cell(2, 0)] > 0.85  # two cells of the red square
    assert cov[cell(1, 0), cell(1, 3)] < 0.01  # red vs green
    assert cov[cell(1, 0), cell(0, 1)] < 0.01  # red vs the black background
    assert cov[cell(0, 0), cell(0, 2)] > 0.5  # two black cells, two apart


def test_correlated_kl_is_the_gaussian_kl():
    torch.manual_seed(0)
    mu, logvar = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4) * 0.5
    # against N(0, I) it is the standard KL
    eye = torch.eye(16).expand(2, 16, 16)
    assert torch.allclose(correlated_kl(mu, logvar, eye), kl_divergence(mu, logvar), rtol=1e-5)
    # against the affinity covariance: torch.distributions' KL, summed over channels
    frames = torch.cat([two_squares(), torch.rand(1, 3, 16, 16)])
    scale_tril = affinity_scale_tril(frames, (4, 4))
    q = MultivariateNormal(
        mu.flatten(2), scale_tril=torch.diag_embed(logvar.flatten(2).mul(0.5).exp())
    )
    p = MultivariateNormal(torch.zeros(2, 3, 16), scale_tril=scale_tril[:, None])
    expected = torch_kl(q, p).sum(1).mean()
    assert torch.allclose(correlated_kl(mu, logvar, scale_tril), expected, rtol=1e-4)


def test_correlated_samples_have_the_prior_covariance():
    scale_tril = affinity_scale_tril(two_squares(), (4, 4))
    eps = torch.randn(20000, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    z = sample_correlated(eps, scale_tril.expand(20000, 16, 16)).flatten(1)
    empirical = z.T @ z / len(z)
    assert torch.allclose(empirical, (scale_tril @ scale_tril.transpose(1, 2))[0], atol=0.04)


def test_the_laplace_kl_is_exact_and_its_draws_are_laplace():
    mu, logvar = torch.tensor([0.0, 0.3, -1.2]), torch.tensor([-6.0, -1.0, 0.5])
    mean, scale = torch.tensor([0.0, -0.2, 0.4]), torch.tensor([0.05, 0.5, 2.0])
    q, p = Normal(mu, (0.5 * logvar).exp()), Laplace(mean, scale)
    torch.manual_seed(0)
    x = q.sample(torch.Size([400000]))
    monte_carlo = (q.log_prob(x) - p.log_prob(x)).mean(0)
    assert torch.allclose(laplace_kl(mu, logvar, mean, scale), monte_carlo, rtol=0.02, atol=0.01)
    draws = laplace_from_normal(torch.randn(400000, generator=torch.Generator().manual_seed(0)))
    assert abs(draws.mean()) < 0.01 and abs(draws.abs().mean() - 1) < 0.01  # E|x| = scale
    assert abs(draws.var() - 2) < 0.03  # var = 2 scale^2
    assert torch.isfinite(laplace_from_normal(torch.tensor([-40.0, 0.0, 40.0]))).all()
    eps = torch.linspace(-3, 3, 13)
    assert (laplace_from_normal(eps).diff() > 0).all()  # monotone
