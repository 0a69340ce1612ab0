"""A prior whose samples move things whole: latent cells that look alike are drawn together.

With a latent map (one z per cell of the feature grid) and the standard prior N(0, I), every
cell's z is drawn independently: a shape spanning several cells gets several unrelated
velocities and is torn apart. The affinity prior keeps N(0, 1) marginals but correlates the
cells of each channel by how alike they look in the context frame (their mean and brightest
colour) and how close they are, the bilateral affinity of image segmentation: cells of one
object share their draw, cells of different objects (or of an object and the background) do
not. Its covariance ``(1 - OWN) * W + OWN * I``, ``W_ij = exp(-|c_i - c_j|^2 / 2 COLOUR^2 -
|p_i - p_j|^2 / 2 DISTANCE^2)``, is a Gaussian kernel (positive definite) plus a little
independent variance per cell; the KL term of the VAE is taken against it, in closed form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from vidgen.models.motion_transport import grid

COLOUR = 0.1  # colour distance (RGB in [0, 1]) at which two cells' correlation falls to e^-1/2
DISTANCE = 3.0  # ... and the distance in cells
OWN = 0.05  # the part of each cell's variance drawn for it alone


def affinity_scale_tril(frame: Tensor, size: tuple[int, int]) -> Tensor:
    """Cholesky factor ``(N, h*w, h*w)`` of the affinity prior's covariance over a ``size``
    grid, from the context ``frame`` ``(N, C, H, W)`` in [0, 1]."""
    h, w = size
    cells = torch.cat([F.adaptive_avg_pool2d(frame, size), F.adaptive_max_pool2d(frame, size)], 1)
    cells = cells.flatten(2).transpose(1, 2).float()  # (N, h*w, 2C)
    ys, xs = grid(h, w, cells)
    places = torch.stack([ys.flatten(), xs.flatten()], 1)
    exponent = torch.cdist(cells, cells).pow(2) / (2 * COLOUR**2)
    exponent = exponent + torch.cdist(places, places).pow(2) / (2 * DISTANCE**2)
    eye = torch.eye(h * w, device=frame.device, dtype=cells.dtype)
    return torch.linalg.cholesky((1 - OWN) * torch.exp(-exponent) + OWN * eye)


def correlated_kl(mu: Tensor, logvar: Tensor, scale_tril: Tensor) -> Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, L L^T)) of latent maps ``(B, C, h, w)`` whose channels
    each have the covariance ``L L^T`` over the ``h*w`` cells (``scale_tril``: ``(B, h*w, h*w)``):
    summed over channels, averaged over the batch."""
    m, lv = mu.flatten(2).float(), logvar.flatten(2).float()  # (B, C, n)
    n = m.shape[-1]
    whitened = torch.linalg.solve_triangular(scale_tril[:, None], m[..., None], upper=False)
    precision = torch.diagonal(torch.cholesky_inverse(scale_tril), dim1=-2, dim2=-1)
    logdet = 2 * torch.diagonal(scale_tril, dim1=-2, dim2=-1).log().sum(-1)
    trace = (lv.exp() * precision[:, None]).sum(-1)
    kl = 0.5 * (trace + whitened.squeeze(-1).pow(2).sum(-1) - n + logdet[:, None] - lv.sum(-1))
    return kl.sum(1).mean()


def sample_correlated(eps: Tensor, scale_tril: Tensor) -> Tensor:
    """Latent maps ``(B, C, h, w)`` from standard normal ``eps`` of that shape: each channel
    multiplied by ``L`` over the cells."""
    flat = eps.flatten(2) @ scale_tril.transpose(1, 2).to(eps.dtype)
    return flat.view_as(eps)
