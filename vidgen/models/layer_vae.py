"""LayerMotionVAE: the ThingMotionVAE's latent and learned prior over the motion layers of
textured video.

Where every pixel carries texture (the embedded textured data, real footage) there is no flat
background to cut things out of; what moves whole is a motion layer. The last context frame's
block-matched velocity (:func:`~vidgen.models.motion_estimation.observed_velocity`) is
explained by a few motions (:func:`~vidgen.models.motion_estimation.fit_layers`: one affine,
the others translations), each pixel in the layer whose motion fits it. The largest layer is
the camera's (its motion is the backdrop's: a pan, a zoom); the others are things, each with
the box of its pixels and the frame's borders as walls it bounces off.

The latent, the posterior's form and the prior are the :class:`~vidgen.models.ThingMotionVAE`'s,
one slot per layer: z is each layer's change of velocity per generated step, and a learned
per-step Laplace prior rolls each layer forward from its state. What differs:

- **The decoder moves layers.** Every pixel of the last context frame moves with its layer's
  path (a thing's bounced off the walls; the camera's without walls, its affine part going on
  as seen) and is splatted forward (:func:`~vidgen.models.motion_transport.splat_onto`): a
  layer's texture moves whole, resampled once from the last true frame, so it does not smear
  however far a future runs. What nothing lands on shows a background plate moved by the
  camera: the last frame with what its things cover, from earlier context frames
  (:func:`background_plate`); what enters the frame, the colours around it.
- **Each layer's velocity is refined** on its own pixels
  (:func:`~vidgen.models.motion_estimation.refine_translations`): block matching's is a fraction
  of a pixel off, and a layer moves on it for the whole future.
- **The posterior tracks layers.** Each layer's textured pixels are found again in each
  generated frame by template matching (whole pixels); the posterior is the steadiest free
  flight through those offsets, as the ThingMotionVAE's through its things' centres.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from vidgen.models.motion_estimation import (
    fit_layers,
    layer_field,
    observed_velocity,
    refine_translations,
    texture,
)
from vidgen.models.motion_predictor import MOTION_SPAN, SPLAT_SHARPNESS
from vidgen.models.motion_transport import inside_frame, push_pull, splat_onto, warp
from vidgen.models.thing_vae import Scene, ThingMotionVAE
from vidgen.models.things import track

WHOLE_PIXEL_MARGIN = 0.25
"""The posterior's path keeps a quarter pixel inside each tracked whole-pixel offset's pixel."""
BORDER = 3
"""Pixels along the frame's borders that do not fit the layers (each pixel is still assigned
one): what enters the frame there has no match in the frames before."""
TIE = 1e-4
"""A thing's pixel whose colour error is within this of the backdrop's stays in the thing."""
UNEXPLAINED = 0.05
"""A thing's pixel whose colour error (squared differences summed over channels) under the
thing's motion is above this is not the thing's."""
COVERED = 0.01
"""An earlier frame's pixel over which a moved-back thing's mask is above this was covered."""
NO_WALL = 1e4
"""Pixels: the camera's walls, too far to reach (a backdrop does not bounce)."""
BOX_SHARE = 0.05
"""A thing's box leaves out this share of its pixels on each side: stray pixels assigned to its
layer elsewhere in the frame do not stretch its box to the walls."""


def share_box(masks: Tensor, share: float) -> Tensor:
    """``(*L, 4)``: the box of each mask ``(*L, H, W)`` in pixels (top, left, bottom, right; the
    last two past the end) that leaves out ``share`` of its pixels on each side; all zero for an
    empty mask."""
    weight = masks.float()
    total = weight.flatten(-2).sum(-1).clamp_min(1e-6)[..., None]
    sides = []
    for profile in (weight.sum(-1), weight.sum(-2)):  # per row, per column
        cumulative = profile.cumsum(-1) / total
        first = (cumulative > share).float().argmax(-1)
        last = (cumulative >= 1 - share - 1e-6).float().argmax(-1) + 1
        sides.append((first, torch.maximum(last, first + 1)))
    (top, bottom), (left, right) = sides
    return torch.stack([top, left, bottom, right], -1) * masks.flatten(-2).any(-1)[..., None]


def refine_labels(frames: Tensor, motions: Tensor, labels: Tensor) -> Tensor:
    """``labels`` ``(B, H, W)`` with the pixels that block matching gave a thing's layer but
    that its motion (``motions`` ``(B, K, 3, 2)``) does not bring back to their colour in any
    of the frames before the last of ``frames`` ``(B, S, C, H, W)`` (squared error summed over
    channels above :data:`UNEXPLAINED`, or above the backdrop's), given to the backdrop, the
    largest layer. Block matching gives a moving thing's velocity to the background up to a
    block's reach around it (what it uncovers, what it is about to cover); a pixel's own colour
    does not."""
    k = motions.shape[1]
    largest = F.one_hot(labels, k).flatten(1, 2).sum(1).argmax(1)  # (B,)
    no_layer = labels.new_zeros(labels.shape)
    errors = []  # (B, H, W) per layer: each pixel's error under that layer's motion
    for layer in range(k):
        velocity = layer_field(motions[:, layer : layer + 1], no_layer)
        back = [
            (warp(frames[:, -1 - step], velocity * step) - frames[:, -1]).pow(2).sum(1)
            for step in range(1, frames.shape[1])
        ]
        errors.append(torch.stack(back, 1).amin(1))
    errors = torch.stack(errors, 1)  # (B, K, H, W)
    own = errors.gather(1, labels[:, None])[:, 0]
    backdrop = errors.gather(1, largest[:, None, None, None].expand_as(own[:, None]))[:, 0]
    stray = (own > UNEXPLAINED) | (own > backdrop + TIE)
    return torch.where(stray, largest[:, None, None].expand_as(labels), labels)


def background_plate(frames: Tensor, masks: Tensor, velocity: Tensor, backdrop: Tensor) -> Tensor:
    """The last of ``frames`` ``(B, S, C, H, W)`` with what its things (``masks[:, 1:]`` of
    ``(B, K, H, W)``) cover: the latest earlier frame that shows it once the camera's motion
    (``backdrop`` ``(B, 2, H, W)``, pixels a step) is undone, with no thing over it there (each
    thing moved back along its ``velocity`` ``(B, K, 2)``, down and right, relative to the
    camera's, ``velocity[:, 0]``); where none does, the colours around it."""
    last = frames[:, -1]
    things = masks[:, 1:, None].float()  # (B, K - 1, 1, H, W)
    known = 1 - things.amax(1)  # (B, 1, H, W)
    plate = last * known
    relative = (velocity[:, 1:] - velocity[:, :1]).flip(-1)[..., None, None]  # (dx, dy)
    h, w = last.shape[-2:]
    for back in range(1, frames.shape[1]):
        earlier = warp(frames[:, -1 - back], backdrop * back)
        inside = inside_frame(backdrop * back)  # where it was then is in the frame
        then = warp(things, (-back * relative).expand(-1, -1, -1, h, w))
        use = (known < 0.5) & inside & (then.amax(1) < COVERED)
        plate = torch.where(use, earlier, plate)
        known = torch.where(use, torch.ones_like(known), known)
    around, _ = push_pull(plate * known, known)
    return torch.where(known > 0.5, plate, around)


class LayerMotionVAE(ThingMotionVAE):
    """Conditional clip VAE that moves each motion layer of the last context frame whole, with
    the :class:`~vidgen.models.ThingMotionVAE`'s learned per-step prior over the layers' changes
    of velocity. Arguments as the ThingMotionVAE's, except ``things``: the motion layers fitted
    to the last context frame's velocity (the largest one is the camera's), and:

    Args:
        wall_share: the share of sampled futures in which a thing layer bounces off the
            frame's borders, drawn per future and layer; in the others it may leave the frame.
            A layer is the part of something that the last frame shows, which may be larger
            than the frame: a best of K that holds both guesses is nearer the truth late in
            the future than one that always bounces. The posterior always keeps the walls.
    """

    posterior_margin = WHOLE_PIXEL_MARGIN

    def __init__(self, things: int = 6, wall_share: float = 1.0, **kwargs: Any) -> None:
        super().__init__(things=things, **kwargs)
        if not 0 <= wall_share <= 1:
            raise ValueError(f"wall_share must be in [0, 1], got {wall_share}")
        self.wall_share = wall_share

    def sample(
        self,
        n: int,
        frames: int | None = None,
        generator: torch.Generator | None = None,
        context: Tensor | None = None,
    ) -> Tensor:
        """:meth:`~vidgen.models.vae_base.VAEModule.sample`, each thing layer keeping its walls
        in ``wall_share`` of the clips (drawn first, from ``generator``)."""
        if self.wall_share == 1:
            return super().sample(n, frames, generator, context)
        scene = self.scene(context)
        draw = torch.rand(
            scene.low.shape[:2], generator=generator, device=self.draw_device(generator)
        )
        keep = (draw < self.wall_share).to(scene.low.device)[..., None]
        scene = scene._replace(
            low=torch.where(keep, scene.low, -NO_WALL), high=torch.where(keep, scene.high, NO_WALL)
        )
        with self.last_scene.pinned(context, scene):
            return super().sample(n, frames, generator, context)

    def build_scene(self, context: Tensor) -> Scene:
        """The motion layers of ``context``'s last frame, largest first, with their motion."""
        frames = context[:, -self.condition_frames :].float()
        b, (h, w), size = len(frames), frames.shape[-2:], frames.shape[-1]
        seen = observed_velocity(frames, MOTION_SPAN, self.max_speed)
        inner = texture(frames[:, -1])[..., BORDER : h - BORDER, BORDER : w - BORDER]
        confidence = F.pad(inner, (BORDER,) * 4)
        motions, labels = fit_layers(seen, confidence, self.things)
        labels = refine_labels(frames, motions, labels)
        motions = refine_translations(frames, motions, labels, MOTION_SPAN, BORDER)
        counts = F.one_hot(labels.flatten(1), self.things).sum(1)  # (B, K)
        order = counts.argsort(dim=1, descending=True, stable=True)
        motions = motions.gather(1, order[..., None, None].expand_as(motions))
        labels = order.argsort(dim=1).gather(1, labels.flatten(1)).view_as(labels)
        masks = labels[:, None] == torch.arange(self.things, device=labels.device)[:, None, None]
        field = layer_field(motions, labels)
        weight = masks.float()
        mean = torch.einsum("bkhw,bchw->bkc", weight, field)
        velocity = (mean / weight.flatten(2).sum(2).clamp_min(1)[..., None]).flip(-1)  # (y, x)
        backdrop = layer_field(motions[:, :1], labels.new_zeros(labels.shape))
        box = share_box(masks, BOX_SHARE).float()
        box[:, 0] = box.new_tensor([0, 0, size, size])
        low, high = -box[..., :2], size - box[..., 2:]
        low[:, 0], high[:, 0] = -NO_WALL, NO_WALL
        return Scene(
            masks=masks,
            whole=masks,
            present=masks.flatten(2).any(2),
            box=box / size,
            area=weight.mean((2, 3)),
            velocity=velocity,
            phase=velocity.new_zeros(b, self.things, 2),
            low=low,
            high=high,
            field=field,
            backdrop=backdrop,
            plate=background_plate(frames, masks, velocity, backdrop),
        )

    @staticmethod
    def moved(scene: Scene, velocity: Tensor, position: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per pixel of the last context frame, from its layer's drawn ``velocity`` and
        ``position`` ``(B, K, T, 2)`` (y, x) at each generated step:
        its offset and velocity ``(B, T, 2, H, W)`` (dx, dy), the layer's affine part going on
        as seen; and the camera's offset of every pixel (where nothing lands)."""
        steps = torch.arange(1, position.shape[2] + 1, device=position.device).float()
        steps = steps.view(1, -1, 1, 1, 1)
        masks = scene.masks.float()
        own = torch.einsum("bkhw,bkc->bchw", masks, scene.velocity.flip(-1))
        offset = torch.einsum("bkhw,bktc->btchw", masks, position.flip(-1))
        pixel_velocity = torch.einsum("bkhw,bktc->btchw", masks, velocity.flip(-1))
        deviation = (scene.field - own)[:, None]
        camera_velocity = scene.velocity[:, 0].flip(-1)[..., None, None]
        camera = position[:, 0].flip(-1)[..., None, None]
        camera = camera + (scene.backdrop - camera_velocity)[:, None] * steps
        return offset + deviation * steps, pixel_velocity + deviation, camera

    def draw(self, last: Tensor, scene: Scene, velocity: Tensor, position: Tensor) -> Tensor:
        """The generated frames ``(B, T, C, H, W)``: every pixel of ``last`` ``(B, C, H, W)``
        moved along its layer's drawn path (``velocity`` and ``position`` ``(B, K, T, 2)``) and
        splatted; where nothing lands, the scene's background plate moved by the camera, and
        where that comes from outside the frame, the colours around it (:func:`push_pull`): a
        smooth guess at what enters, not its edge's pixels repeated."""
        offset, pixel_velocity, camera = self.moved(scene, velocity, position)
        frames = last[:, None].expand(-1, position.shape[2], -1, -1, -1)
        base = warp(scene.plate[:, None].expand_as(frames), camera)
        inside = inside_frame(camera)
        around, found = push_pull((base * inside).flatten(0, 1), inside.flatten(0, 1).float())
        outside = ~inside & found.view(*inside.shape[:2], 1, 1, 1)
        base = torch.where(outside, around.view_as(base), base)
        return splat_onto(frames, offset, pixel_velocity, base, SPLAT_SHARPNESS).clamp(0, 1)

    def seen_positions(self, scene: Scene, last: Tensor, future: Tensor) -> Tensor:
        """Each thing layer's whole-pixel offset ``(B, K, T, 2)`` in ``future``
        ``(B, T, C, H, W)`` from where its pixels lie in ``last`` ``(B, C, H, W)``: template
        matching (:func:`~vidgen.models.things.track`) of the layer's textured pixels. NaN
        (not seen: the path goes on) for the camera's layer, whose pixels a zoom and the things
        over it change too much to match, and for a layer from the first step faster than
        ``max_speed``: the match is lost."""
        radius = math.ceil(2 * self.max_speed)
        things = track(last, scene.masks[:, 1:], future.float(), scene.velocity[:, 1:], radius)
        steps = things.diff(dim=2, prepend=torch.zeros_like(things[:, :, :1]))
        lost = (steps.abs() > self.max_speed + 1).any(-1).cummax(dim=2).values
        camera = torch.full_like(things[:, :1], float("nan"))
        return torch.cat([camera, torch.where(lost[..., None], float("nan"), things)], 1)
