"""ThingMotionVAE: a conditional VAE whose latent is how each thing's velocity changes.

For scenes of one-colour things over a flat background (the embedded shapes data), a future is
the last context frame with its things moved: each thing is cut out of that frame
(:func:`~vidgen.models.things.thing_masks`; one that another covers there is completed from
the context frame that shows the most of it, :func:`~vidgen.models.things.unhide`, and drawn
under it) and pasted at a whole-pixel offset per generated step
(:func:`~vidgen.models.things.paste`), so it keeps its outline and size exactly. The latent
says where the things go:

- **z is each thing's change of velocity.** ``z[k, t]`` (pixels a step, down and right) is
  thing k's change of velocity at generated step t: ``velocity_t = velocity_{t-1} + z_t``
  from the velocity seen in the context. The velocities add up to a free flight from the
  thing's sub-pixel position in the last context frame; the flight bounced off the frame's
  borders (:func:`~vidgen.models.thing_paths.fold`, the walls where the thing's box meets them,
  each moved up to half a pixel where that fits the context better) and rounded to whole
  pixels is where it is drawn. Position, velocity and walls come from the bounced free flight
  nearest the thing's sub-pixel centres in the context frames
  (:func:`~vidgen.models.things.context_offsets` finds it in each as one bounced path,
  :func:`~vidgen.models.things.centres`, :func:`~vidgen.models.thing_paths.bounced_line_fit`):
  hard edges drawn from a sub-pixel position tell it to a fraction of a pixel, where
  whole-pixel offsets tell a third of a pixel a step.
- **The posterior is the motion seen.** Its mean is the changes of the steadiest free flight
  whose bounced path stays within a fraction of a pixel of each thing's centres in the clip's
  generated frames (:func:`~vidgen.models.thing_paths.follow`; where a thing is covered the flight
  goes on), starting at the speed of a line through them: z is zero but where the motion
  changes beyond a bounce off a border; its spread a fixed fiftieth of a pixel. Posterior
  and decoder have no parameters.
- **The prior is learned, step by step.** ``p(z_t | state_t)`` is a Laplace distribution per
  axis whose mean and scale an MLP gives from the thing's state at that step (its box, how far
  it would pass each border a step on, its velocity, the speed it showed in the context, its
  area, whether this is the first step); Laplace (:mod:`vidgen.models.laplace`), so that the
  rare large changes the posterior shows (a tracking slip) do not widen it for the many
  steps with none. Untrained it keeps each velocity (bounces come from the walls); it learns
  how sure the context's speed is, how far a bounce strays from the walls' and any motion
  they do not explain (a thing that slows down). Training fits it to the tracked motion (the
  KL term, with the states of the posterior's trajectory); sampling rolls it forward from the
  context.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidgen.models.base import adam
from vidgen.models.laplace import laplace_from_normal, laplace_kl
from vidgen.models.motion_predictor import fp32
from vidgen.models.thing_paths import (
    bounced_line_fit,
    first_run_velocity,
    fold,
    follow,
    line_fit,
    one_run,
)
from vidgen.models.things import (
    boxes,
    centres,
    context_offsets,
    paste,
    seen_pixels,
    thing_masks,
    track,
    unhide,
)
from vidgen.models.vae_base import VAEModule
from vidgen.wholeness import MIN_AREA

POSTERIOR_SPREAD = 0.02
"""The posterior's spread around the motion seen, pixels a step. The KL term keeps the prior's
scale near it: a larger one would make every sampled future drift (its velocity a random walk
of at least this step)."""
POSTERIOR_LOGVAR = 2 * math.log(POSTERIOR_SPREAD)
POSTERIOR_MARGIN = 0.1
"""How far inside the pixel around a thing's centre the posterior's path moves where it would
stray (:func:`~vidgen.models.thing_paths.follow`): 0.4 px of slack for the centres' jitter of a
drawn row more or less."""
SCALE_FLOOR = POSTERIOR_SPREAD
"""The prior's smallest scale, pixels a step."""
Z_DIM = inspect.signature(VAEModule.__init__).parameters["z_dim"].default
"""VAEModule's default ``z_dim``: the only value accepted (the CLI passes it on), and unused."""
STATE = 14
"""Features of a thing's state: box (4), overshoot a step on past each side (4), velocity (2),
context speed (2), area (1), first step (1)."""


class Scene(NamedTuple):
    """The things of a context: masks ``(B, K, H, W)`` in its last frame, ``present``
    ``(B, K)`` (non-empty slots), ``box`` ``(B, K, 4)`` (top, left, bottom, right in frame
    fractions), ``area`` ``(B, K)`` (frame fraction), ``velocity`` ``(B, K, 2)`` (pixels a
    step at the last frame) and ``phase`` ``(B, K, 2)`` (sub-pixel position there, pixels from
    the centre of the thing's drawn pixels), both of the bounced free flight nearest its
    centres in the context (:func:`~vidgen.models.thing_paths.bounced_line_fit`; its steadiest
    path through its whole-pixel offsets, :func:`~vidgen.models.thing_paths.follow`, where
    fewer than two centres are trusted), and ``low`` and
    ``high`` ``(B, K, 2)``: the positions at which its box meets the frame's borders, the
    walls it bounces off (up to half a pixel from its drawn box's, as fitted). Motion layers
    (:class:`~vidgen.models.LayerMotionVAE`) also have
    ``field`` ``(B, 2, H, W)``, each pixel's velocity ``(dx, dy)`` from its layer's motion,
    ``backdrop`` ``(B, 2, H, W)``, the camera's motion at every pixel, and ``plate``
    ``(B, C, H, W)``, the last frame with what its things cover; things have none."""

    masks: Tensor
    whole: Tensor
    present: Tensor
    box: Tensor
    area: Tensor
    velocity: Tensor
    phase: Tensor
    low: Tensor
    high: Tensor
    field: Tensor | None = None
    backdrop: Tensor | None = None
    plate: Tensor | None = None


class LastScene:
    """The scene of the last context asked for, kept with that context tensor.

    A training step asks for the same context's scene three times (posterior, KL, decoder) and
    sampling twice (prior, decoder); building it (segmentation, tracking, completion) is the
    model's costliest part. The context is kept, so its memory cannot pass to another tensor
    while the scene is: a context with the same memory, shape, strides, dtype and version
    (an in-place change bumps it) holds the same values. Tensors made under
    ``torch.inference_mode`` have no version, so their scenes are built each time.
    """

    def __init__(self) -> None:
        self.context: Tensor | None = None
        self.key: tuple | None = None
        self.scene: Scene | None = None
        self.pin: tuple[Tensor, Scene] | None = None

    def get(self, context: Tensor, build: Callable[[Tensor], Scene]) -> Scene:
        """``build(context)``, or the kept scene where ``context`` is the kept one (or the
        :meth:`pinned` one)."""
        if self.pin is not None and context is self.pin[0]:
            return self.pin[1]
        if context.is_inference():
            return build(context)
        key = (
            context.data_ptr(),
            context.device,
            context.dtype,
            tuple(context.shape),
            context.stride(),
            context._version,
        )
        if key != self.key:  # None before the first
            self.scene = build(context)
            self.context, self.key = context, key
        return self.scene

    @contextmanager
    def pinned(self, context: Tensor, scene: Scene) -> Iterator[None]:
        """Within it, ``context`` (that tensor object, made under ``inference_mode`` or not)
        has ``scene``: for a context made from another whose scene is known."""
        previous, self.pin = self.pin, (context, scene)
        try:
            yield
        finally:
            self.pin = previous


class ThingMotionVAE(VAEModule):
    """Conditional clip VAE that moves each thing of the last context frame whole, with a
    learned per-step prior over the things' changes of velocity. The shared options
    (``**kwargs``) are :class:`VideoModule`'s and :class:`VAEModule`'s, except ``z_dim``: the
    latent is ``(things, frames - condition_frames, 2)``, one change of velocity per thing and
    generated step (another value of ``z_dim`` is refused), and ``kl_warmup_steps``, which
    must stay 0: the prior is all that learns, from the KL term.

    Args:
        things: slots: the largest one-colour pieces of the last context frame moved (of at
            least ``vidgen.wholeness.MIN_AREA`` pixels); the rest of it stays still.
        condition_frames: true frames each clip starts from (at least 2: the things'
            velocities are read off them).
        max_speed: the fastest a thing moves, pixels a step: the tracking reaches twice as far
            (a bounce reverses a velocity), and the prior's velocities are in its units.
        hidden: width of the prior's MLP (2 hidden layers).
        beta: weight of the KL term (> 0: it trains the prior).
        temperature: sampling draws each change with the prior's scale times this (the KL
            term fits the prior as it is). The tracked motion changes at a few steps and by
            much; a Laplace fitted to it spreads that change over every step, so its draws
            scatter the paths more than real motion does: below 1 corrects that. 0 gives the
            prior's mean path.
    """

    default_optimizer = staticmethod(adam)
    posterior_margin = POSTERIOR_MARGIN
    """How far inside the pixel around a seen position the posterior's path moves where it
    would stray (:func:`~vidgen.models.thing_paths.follow`)."""

    def __init__(
        self,
        things: int = 4,
        condition_frames: int = 4,
        max_speed: float = 4.0,
        hidden: int = 64,
        beta: float = 1.0,
        temperature: float = 1.0,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("z_dim", Z_DIM) != Z_DIM:
            raise ValueError(
                "ThingMotionVAE's latent is (things, frames - condition_frames, 2): one change "
                "of velocity per thing and generated step; z_dim does not apply"
            )
        if kwargs.get("kl_warmup_steps", 0):
            raise ValueError(
                "ThingMotionVAE learns only from the KL term: kl_warmup_steps must be 0"
            )
        super().__init__(beta=beta, **kwargs)
        self.save_hyperparameters(ignore=["loss"])
        if beta <= 0:
            raise ValueError(f"beta must be > 0: the KL term is what trains the prior, got {beta}")
        if not 2 <= condition_frames < self.frames:
            raise ValueError(
                f"condition_frames must be in [2, frames={self.frames}) (velocities are read off "
                f"the context), got {condition_frames}"
            )
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0: the prior's mean), got {temperature}")
        if things < 1 or hidden < 1 or max_speed <= 0:
            raise ValueError(
                f"things and hidden must be >= 1 and max_speed > 0, got {things}, {hidden}, "
                f"{max_speed}"
            )
        self.things, self.condition_frames = things, condition_frames
        self.max_speed, self.temperature = max_speed, temperature
        self.z_shape = (things, self.frames - condition_frames, 2)
        self.last_scene = LastScene()
        self.prior_net = nn.Sequential(
            nn.Linear(STATE, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 4),
        )
        nn.init.zeros_(self.prior_net[-1].weight)  # untrained: the context's velocity goes on
        nn.init.zeros_(self.prior_net[-1].bias)

    def encode(self, video: Tensor, ids: Tensor | None = None) -> Tensor:
        """No backbone features (an empty ``(B, S, 0, 1, 1)``): things are found and tracked in
        the frames themselves, so the frozen VGG16 is not run."""
        return video.new_zeros(*video.shape[:2], 0, 1, 1)

    # --- the scene and its trajectories -------------------------------------------------------

    def scene(self, context: Tensor) -> Scene:
        """The things of ``context`` ``(B, c, C, H, W)`` (its last ``condition_frames``); built
        once for the posterior, KL and decoder of the same context (:class:`LastScene`)."""
        c = self.condition_frames
        if context is None or context.ndim != 5 or context.shape[1] < c:
            got = None if context is None else tuple(context.shape)
            raise ValueError(f"ThingMotionVAE needs context (B, {c}, C, H, W), got {got}")
        return self.last_scene.get(context, self.build_scene)

    def sample_repeated(
        self,
        context: Tensor,
        repeats: int,
        frames: int,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """:meth:`~vidgen.models.vae_base.VAEModule.sample_repeated` with each clip's scene
        built once, not once a repeat."""
        repeated = context.repeat_interleave(repeats, 0)
        scene = Scene(
            *(None if t is None else t.repeat_interleave(repeats, 0) for t in self.scene(context))
        )
        with self.last_scene.pinned(repeated, scene):
            return self.sample(len(repeated), frames, generator, context=repeated)

    def build_scene(self, context: Tensor) -> Scene:
        """:meth:`scene`, built."""
        c = self.condition_frames
        context = context[:, -c:].float()
        size = context.shape[-1]
        masks = thing_masks(context[:, -1], self.things, MIN_AREA)
        offsets = context_offsets(context, masks, self.max_speed)
        seen = seen_pixels(context[:, -1], masks, context, offsets)
        whole = unhide(context, masks, offsets, seen)
        hidden = (whole.flatten(2).sum(2) - masks.flatten(2).sum(2)).clamp(min=0)
        order = hidden.argsort(dim=1, descending=True, stable=True)  # the covered ones drawn first
        masks, whole, offsets, seen = (
            m.gather(1, order.view(*order.shape, *(1,) * (m.ndim - 2)).expand_as(m))
            for m in (masks, whole, offsets, seen)
        )
        start = offsets[:, :, 1] - offsets[:, :, 0]  # condition_frames >= 2
        velocity, position = follow(offsets[:, :, 1:], offsets[:, :, 0], start)
        seen, trusted = centres(context[:, -1], masks, context, offsets, seen)
        box = boxes(whole).float()
        low, high = -box[..., :2], size - box[..., 2:]  # how far it moves before its box meets one
        weight = trusted[..., None].expand_as(seen).float()
        slope, phase, fitted, slack = bounced_line_fit(seen, weight, low, high, self.max_speed)
        phase = torch.where(fitted, phase, position[:, :, -1])
        return Scene(
            masks=masks,
            whole=whole,
            present=masks.flatten(2).any(2),
            box=box / size,
            area=whole.flatten(2).float().mean(2),
            velocity=torch.where(fitted, slope, velocity[:, :, -1]),
            phase=phase,
            low=phase + low + slack,
            high=phase + high - slack,
        )

    @staticmethod
    def trajectory(scene: Scene, changes: Tensor) -> tuple[Tensor, Tensor]:
        """Velocities and positions ``(B, K, T, 2)`` (pixels from the last context frame's,
        sub-pixel: the offsets are their rounding) after each of ``changes`` ``(B, K, T, 2)``,
        from the scene's velocity and phase."""
        velocity = scene.velocity[:, :, None] + changes.cumsum(2)
        return velocity, scene.phase[:, :, None] + velocity.cumsum(2)

    @staticmethod
    def drawn(scene: Scene, velocity: Tensor, position: Tensor) -> tuple[Tensor, Tensor]:
        """Free-flight ``velocity`` and ``position`` ``(B, K, ..., 2)`` as drawn: bounced off
        the frame's borders (:func:`~vidgen.models.thing_paths.fold`), the velocity turned with
        it."""
        extra = (1,) * (position.ndim - 3)
        low = scene.low.view(*scene.low.shape[:2], *extra, 2)
        high = scene.high.view(*scene.high.shape[:2], *extra, 2)
        folded, direction = fold(position, low, high)
        return velocity * direction, folded

    def state(self, scene: Scene, velocity: Tensor, offset: Tensor, first: Tensor) -> Tensor:
        """The prior's input ``(B, K, ..., STATE)`` for things drawn at ``offset`` (whole
        pixels from the last context frame) moving at ``velocity`` (both ``(B, K, ..., 2)``):
        the box, in frame fractions from -1 to 1; how far the box a step on would lie outside
        the frame past each side (a bounce is due there: it turns that overshoot back), the
        velocity and the context's speed, in units of ``max_speed``; the area fraction;
        ``first``, 1 at the first generated step, where the speed read off the context is
        corrected (broadcast to ``(B, K, ..., 1)``)."""
        lead = velocity.shape[:-1]
        extra = (1,) * (velocity.ndim - 3)
        box = scene.box.view(*scene.box.shape[:2], *extra, 4) * self.image_size
        box = box + torch.cat([offset, offset], -1)  # pixels
        ahead = box + torch.cat([velocity, velocity], -1)
        outside = torch.cat([-ahead[..., :2], ahead[..., 2:] - self.image_size], -1).relu()
        speed = scene.velocity.abs().view(*scene.velocity.shape[:2], *extra, 2)
        area = scene.area.view(*scene.area.shape[:2], *extra, 1)
        parts = [
            2 * box / self.image_size - 1,
            outside / self.max_speed,
            velocity / self.max_speed,
            speed / self.max_speed,
            area,
            first,
        ]
        return torch.cat([p.expand(*lead, p.shape[-1]) for p in parts], -1)

    def prior(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """The prior's Laplace distribution of the change of velocity per axis at ``state``:
        its mean and scale, each ``(..., 2)``, pixels a step (the scale at least
        ``SCALE_FLOOR``)."""
        mean, scale = self.prior_net(state).chunk(2, -1)
        return mean * self.max_speed, SCALE_FLOOR + F.softplus(scale)

    # --- posterior, decoder, prior ------------------------------------------------------------

    def infer(self, features: Tensor, video: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z | clip) ``(B, *z_shape)``: the changes of velocity of
        each thing's steadiest free flight whose path bounced off the walls stays within
        ``0.5 - posterior_margin`` px of its positions seen in the clip's generated frames
        (:func:`~vidgen.models.thing_paths.follow`, :meth:`seen_positions`; where it is not
        seen, the flight goes on). The flight starts at the context's sub-pixel position with
        the slope of a line through the positions of its first run: the first step's change
        corrects the speed read off the context, the later ones are zero until the motion
        changes beyond a bounce (``features`` are not used). Past the clip's end the changes
        are zero."""
        c, steps = self.condition_frames, self.z_shape[1]
        with fp32(video.device):
            scene = self.scene(video[:, :c])
            targets = self.seen_positions(scene, video[:, c - 1].float(), video[:, c : c + steps])
            trusted = ~targets.isnan().any(-1)
            walls = (scene.low, scene.high)
            _, flight = follow(targets, scene.phase, scene.velocity, 0.5, walls)  # unfolded
            since = F.pad(flight, (0, 0, 1, 0))
            weight = one_run(since) * F.pad(trusted, (1, 0), value=True)[..., None]
            slope, _, fitted = line_fit(since, weight, 0)
            speed = torch.where(fitted, slope, first_run_velocity(flight))
            steady, _ = follow(targets, scene.phase, speed, self.posterior_margin, walls)
            velocity = torch.cat([scene.velocity[:, :, None], steady], 2)
            changes = velocity.diff(dim=2) * scene.present[:, :, None, None]
            mu = F.pad(changes, (0, 0, 0, steps - changes.shape[2]))
        return mu, torch.full_like(mu, POSTERIOR_LOGVAR)

    def seen_positions(self, scene: Scene, last: Tensor, future: Tensor) -> Tensor:
        """Each thing's position ``(B, K, T, 2)`` in ``future`` ``(B, T, C, H, W)``, pixels from
        where it is in ``last`` ``(B, C, H, W)``, NaN where it is not seen whole: its sub-pixel
        centre (:func:`~vidgen.models.things.centres`) where template matching
        (:func:`~vidgen.models.things.track`) finds it uncovered."""
        future = future.float()
        radius = math.ceil(2 * self.max_speed)
        offsets = track(last, scene.masks, future, scene.velocity, radius)
        seen = seen_pixels(last, scene.masks, future, offsets)
        seen, trusted = centres(last, scene.masks, future, offsets, seen)
        return torch.where(trusted[..., None], seen, float("nan"))

    def decode(
        self,
        z: Tensor,
        frames: int | None = None,
        context: Tensor | None = None,
        context_features: Tensor | None = None,
    ) -> Tensor:
        """Clips ``(B, frames, C, H, W)``: ``context`` ``(B, c, C, H, W)``, then its last frame
        with each thing moved along z's trajectory (:meth:`draw`; no changes past z's steps).
        ``context_features`` are not used."""
        frames = self.check_context(z, frames, context)
        c = self.condition_frames
        with fp32(z.device):
            scene = self.scene(context)
            changes = z.float()[:, :, : frames - c]
            changes = F.pad(changes, (0, 0, 0, frames - c - changes.shape[2]))
            velocity, position = self.drawn(scene, *self.trajectory(scene, changes))
            generated = self.draw(context[:, -1].float(), scene, velocity, position)
        return torch.cat([context, generated.to(context.dtype)], 1)

    def draw(self, last: Tensor, scene: Scene, velocity: Tensor, position: Tensor) -> Tensor:
        """The generated frames ``(B, T, C, H, W)``: ``last`` ``(B, C, H, W)`` with each thing
        lifted off and pasted at its drawn ``position`` ``(B, K, T, 2)`` rounded to whole
        pixels (its ``velocity`` is not used)."""
        return paste(last, scene.masks, position.round(), scene.whole)

    def kl(self, mu: Tensor, logvar: Tensor, context: Tensor | None = None) -> Tensor:
        """KL(q(z | clip) || p(z | context)), per step in closed form, with each step's prior
        given the state of the posterior mean's trajectory; summed over the things present and
        the steps, averaged over clips."""
        with fp32(mu.device):
            scene = self.scene(context)
            mu, logvar = mu.float(), logvar.float()
            velocity, position = self.trajectory(scene, mu)
            before = torch.cat([scene.velocity[:, :, None], velocity[:, :, :-1]], 2)
            at = torch.cat([scene.phase[:, :, None], position[:, :, :-1]], 2)
            before, at = self.drawn(scene, before, at)
            at = at.round()
            first = (torch.arange(mu.shape[2], device=mu.device) == 0).float()[:, None]
            mean, scale = self.prior(self.state(scene, before, at, first))
            terms = laplace_kl(mu, logvar, mean, scale)
            return (terms.sum((2, 3)) * scene.present).sum(1).mean()

    def correlate(self, eps: Tensor, context: Tensor | None) -> Tensor:
        """A prior sample from standard normal ``eps`` ``(n, *z_shape)``: the prior rolled
        forward from the context's state, each step's change drawn (its scale times
        ``temperature``) given the state the ones before led to (zero for empty slots)."""
        with fp32(eps.device):
            scene = self.scene(context)
            velocity, position = scene.velocity, scene.phase
            changes = []
            for t in range(eps.shape[2]):
                first = torch.full((1,), float(t == 0), device=velocity.device)
                drawn_velocity, at = self.drawn(scene, velocity, position)
                mean, scale = self.prior(self.state(scene, drawn_velocity, at.round(), first))
                draw = laplace_from_normal(eps[:, :, t].float())
                change = (mean + self.temperature * scale * draw) * scene.present[..., None]
                velocity = velocity + change
                position = position + velocity
                changes.append(change)
            return torch.stack(changes, 2)
