"""Motion layers: a velocity field explained by a few motions (Wang & Adelson 1994).

Block matching gives every pixel its own velocity, and the velocities of one object's pixels
differ by fractions of a pixel (noise, flat patches that tie). Extrapolated over 16 steps those
differences tear the object apart: its pixels drift away from each other. A scene is mostly a
few things moving rigidly (the background under a camera pan or zoom, a few objects), so the
field is replaced by ``layers`` motions, each pixel taking the one of the layer that explains its
own velocity best: the pixels of a layer move together. The first layer, the camera's, is
affine, ``v(x, y) = A [x, y, 1]`` (pan, zoom, rotation); the others are translations: an
affine fit to a small thing's pixels leans on its worst matches (the background it uncovers,
matched wrongly, tilts it) and stretches the thing as it moves.

Fitting is k-means with these models: the first layer is the confidence-weighted least-squares
fit to the whole field, each next one starts as the velocity of the confident pixel worst
explained so far; then pixels are assigned to the layer nearest their velocity and each layer
is refitted to its pixels, ``iterations`` times.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from vidgen.models.motion import grid

RIDGE = 1e-3  # regularises each layer's least-squares fit (a layer with few or collinear pixels)
UNSURE = 1e-4  # confidence added everywhere: pixels without texture still count, a little
FIT_PIXELS = 4096  # the layers are fitted on at most about this many pixels of a frame


def affine_basis(h: int, w: int, like: Tensor) -> Tensor:
    """``(H * W, 3)``: each pixel's ``[x, y, 1]``, ``x`` and ``y`` centred and in frame widths."""
    ys, xs = grid(h, w, like)
    return torch.stack([(xs - w / 2) / w, (ys - h / 2) / h, torch.ones_like(xs)], -1).flatten(0, 1)


def fit_motion(basis: Tensor, velocity: Tensor, weight: Tensor, affine: bool) -> Tensor:
    """Weighted least-squares motions ``(N, 3, 2)`` (as ``A`` above) of ``velocity``
    ``(N, P, 2)`` at ``basis`` ``(P, 3)`` with pixel weights ``weight`` ``(N, P)``: affine
    (ridge :data:`RIDGE`), or a translation (the weighted mean velocity)."""
    if not affine:
        mean = (velocity * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(RIDGE)
        return F.pad(mean[:, None], (0, 0, 2, 0))  # zero rows for x and y
    weighted = basis * weight[..., None]  # (N, P, 3)
    gram = weighted.transpose(1, 2) @ basis + RIDGE * torch.eye(
        3, dtype=basis.dtype, device=basis.device
    )
    return torch.linalg.solve(gram, weighted.transpose(1, 2) @ velocity)


@torch.no_grad()
def motion_layers(velocity: Tensor, confidence: Tensor, layers: int, iterations: int = 8) -> Tensor:
    """``velocity`` ``(N, 2, H, W)`` with each pixel's velocity replaced by that of its motion
    layer: ``layers`` motions fitted per clip, weighted by ``confidence`` ``(N, 1, H, W)``,
    e.g. :func:`~vidgen.models.motion.texture`. A field made of one affine motion and at most
    ``layers - 1`` translations comes back unchanged (up to the ridge). Frames of more than
    :data:`FIT_PIXELS` pixels are fitted on an evenly strided subset of them, then every pixel
    is assigned."""
    if layers < 1 or iterations < 0:
        raise ValueError(f"layers must be >= 1 and iterations >= 0, got {layers}, {iterations}")
    n, _, h, w = velocity.shape
    every = affine_basis(h, w, velocity.float())  # solved in float32 whatever the precision
    everywhere = velocity.float().flatten(2).transpose(1, 2)  # (N, P, 2)
    stride = math.ceil(math.sqrt(h * w / FIT_PIXELS))
    rows, columns = (torch.arange(0, size, stride, device=velocity.device) for size in (h, w))
    keep = (rows[:, None] * w + columns).flatten()
    clips = torch.arange(n, device=velocity.device)
    basis, field = every[keep], everywhere[:, keep]
    weight = confidence.float().flatten(1)[:, keep] + UNSURE
    models = [fit_motion(basis, field, weight, affine=True)]
    residual = (basis @ models[0] - field).norm(dim=-1)  # how badly the best layer so far fits
    for _ in range(layers - 1):  # seed: the confident pixel worst explained so far
        worst = (residual * weight).argmax(1)
        seed = torch.zeros_like(models[0])
        seed[:, 2] = field[clips, worst]
        models.append(seed)
        residual = torch.minimum(residual, (basis @ seed - field).norm(dim=-1))
    stacked = torch.stack(models, 1)  # (N, K, 3, 2)
    for _ in range(iterations):
        member = F.one_hot(assign(basis, field, stacked), layers).to(weight) * weight[..., None]
        refits = []
        for k in range(layers):
            alive = (member[..., k].sum(1) > UNSURE)[:, None, None]
            refit = fit_motion(basis, field, member[..., k], affine=k == 0)
            refits.append(torch.where(alive, refit, stacked[:, k]))
        stacked = torch.stack(refits, 1)
    chosen = stacked[clips[:, None], assign(every, everywhere, stacked)]  # (N, P, 3, 2)
    out = (every[None, :, None] @ chosen)[:, :, 0]  # (N, P, 2)
    return out.transpose(1, 2).reshape(n, 2, h, w).to(velocity.dtype)


def assign(basis: Tensor, field: Tensor, models: Tensor) -> Tensor:
    """Each pixel's layer ``(N, P)``: the one of ``models`` ``(N, K, 3, 2)`` whose motion at it
    is nearest its velocity in ``field`` ``(N, P, 2)``."""
    predicted = torch.einsum("pi,nkij->nkpj", basis, models)
    return (predicted - field[:, None]).norm(dim=-1).argmin(1)
