"""Stride-1 transposed convolution with an optional FFT implementation.

The paper's decoder head ends in a single ``ConvTranspose2d`` with a 190x190 kernel
(16 -> 3 channels, 35x35 -> 224x224).  A transposed convolution with stride 1 and
padding 0 is a *full* linear convolution (not a correlation) of each input channel with
the kernel::

    out[o] = bias[o] + sum_i full_conv2d(x[i], weight[i, o])

where ``weight`` has the ``ConvTranspose2d`` layout ``(in_channels, out_channels, kH, kW)``.
Zero-padding both operands to (at least) the full output size ``(H + kH - 1, W + kW - 1)``
makes the circular convolution computed by the FFT equal to the linear one, so::

    out = irfft2(sum_i rfft2(x_i) * rfft2(w_i)) + bias

which for large kernels is orders of magnitude cheaper than the direct algorithm.

:class:`Deconv2d` subclasses :class:`torch.nn.ConvTranspose2d`, so parameters and
state-dict keys (``weight``, ``bias``) are identical for every ``impl`` and checkpoints
move freely between implementations.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

Impl = Literal["auto", "fft", "direct"]

__all__ = ["Deconv2d", "fast_fft_size", "fft_conv_transpose2d", "use_fft"]

# Kernel area (kH * kW) from which ``impl="auto"`` switches to the FFT path.
FFT_MIN_KERNEL_AREA = 196


def use_fft(kernel_size: tuple[int, int]) -> bool:
    """Crossover rule of ``impl="auto"``: use the FFT path iff ``kH * kW >= 196`` (14x14).

    The FFT path costs about the same whatever the kernel size, while the direct algorithm's
    cost grows with ``kH * kW``: small kernels are faster direct, large ones as an FFT product.
    The threshold is the smallest kernel area at which the FFT path was not slower on maps of
    32 px and more; channel counts hardly move it, so the rule reads the kernel area only
    (``benchmarks/bench_deconv.py --sweep`` measures the crossover;
    ``docs/experiments/2026-11-performance.md`` has the table it was set from).
    """
    kh, kw = kernel_size
    return kh * kw >= FFT_MIN_KERNEL_AREA


def fast_fft_size(n: int) -> int:
    """Smallest ``m >= n`` whose prime factors are all in {2, 3, 5, 7}.

    Such sizes are handled efficiently by pocketfft (CPU) and cuFFT (GPU); padding the
    FFT to them (then cropping) avoids slow large-prime transforms.
    """
    if n < 1:
        raise ValueError(f"FFT size must be positive, got {n}")
    m = n
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def _fft_shape(out_hw: tuple[int, int], pad_to_fast: bool) -> tuple[int, int]:
    if not pad_to_fast:
        return out_hw
    return fast_fft_size(out_hw[0]), fast_fft_size(out_hw[1])


def _weight_spectrum(weight: Tensor, s: tuple[int, int]) -> Tensor:
    """rfft2 of the ``(in, out, kH, kW)`` weight, as a contiguous ``(fh * fw, in, out)``."""
    wf = torch.fft.rfft2(weight, s=s)  # (in, out, fh, fw)
    c_in, c_out, fh, fw = wf.shape
    return wf.permute(2, 3, 0, 1).reshape(fh * fw, c_in, c_out)


def _fft_core(
    x: Tensor, wf: Tensor, bias: Tensor | None, out_hw: tuple[int, int], s: tuple[int, int]
) -> Tensor:
    """Full convolution of ``x`` ``(N, C_in, H, W)`` given ``wf = _weight_spectrum(w, s)``.

    The channel contraction ``Y[f] = X[f] @ W[f]`` (``(N, in) @ (in, out)`` per frequency
    bin ``f``) is one complex ``bmm`` over contiguous ``(F, N, in)``/``(F, in, out)``
    operands: of the variants tried (non-contiguous bmm/einsum, a per-output-channel
    multiply-sum) the one that was never much slower.
    """
    n, c_in = x.shape[:2]
    xf = torch.fft.rfft2(x, s=s)  # (N, in, fh, fw)
    fh, fw = xf.shape[-2:]
    xf = xf.permute(2, 3, 0, 1).reshape(fh * fw, n, c_in)  # contiguous copy
    yf = torch.bmm(xf, wf)  # (fh * fw, N, out)
    yf = yf.reshape(fh, fw, n, -1).permute(2, 3, 0, 1)
    y = torch.fft.irfft2(yf, s=s)
    if s != out_hw:
        y = y[..., : out_hw[0], : out_hw[1]]
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


def fft_conv_transpose2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, pad_to_fast: bool = True
) -> Tensor:
    """Functional FFT version of ``F.conv_transpose2d(x, weight, bias)`` (stride 1, pad 0).

    ``x``: ``(N, C_in, H, W)``; ``weight``: ``(C_in, C_out, kH, kW)``.  Computes in the
    dtype of ``x`` (use float32/float64); no autocast handling.
    """
    kh, kw = weight.shape[-2:]
    out_hw = (x.shape[-2] + kh - 1, x.shape[-1] + kw - 1)
    s = _fft_shape(out_hw, pad_to_fast)
    return _fft_core(x, _weight_spectrum(weight, s), bias, out_hw, s)


class Deconv2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (stride 1, padding 0, no groups/dilation) with an FFT path.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: ``k`` or ``(kH, kW)``; the output is ``(H + kH - 1, W + kW - 1)``.
        bias: learnable per-output-channel bias.
        impl: ``"direct"`` uses the parent's ``forward``; ``"fft"`` the FFT path;
            ``"auto"`` picks per :func:`use_fft` (FFT for kernel area >= 196).

    The FFT path always computes in float32 (float64 if input and weight are float64).
    Under ``torch.autocast`` it disables autocast internally and returns the autocast
    dtype, exactly as the direct ``conv_transpose2d`` does (it is on autocast's
    lower-precision list, e.g. bfloat16 on CPU).

    In eval mode, when no gradient w.r.t. the weight is required (``torch.no_grad()``,
    ``torch.inference_mode()`` or a frozen weight), the weight spectrum is cached.  The
    cache key is ``(weight._version, weight.data_ptr(), device, dtype, fft size)``, and
    the cache is also dropped by ``.train()/.eval()``, ``.to()``/``.cuda()``/``.half()``
    (``_apply``) and ``load_state_dict``.  In-place edits through ``weight.data`` do not
    bump ``_version``; call :meth:`clear_spectrum_cache` after such edits.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        bias: bool = True,
        impl: Impl = "auto",
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=1,
            padding=0,
            output_padding=0,
            groups=1,
            bias=bias,
            dilation=1,
        )
        if impl not in ("auto", "fft", "direct"):
            raise ValueError(f"impl must be 'auto', 'fft' or 'direct', got {impl!r}")
        self.impl: Impl = impl
        self.pad_to_fast = True
        self._spec_key: tuple | None = None
        self._spec_val: Tensor | None = None
        self._spec_ref: Tensor | None = None  # keeps the keyed storage alive (see _spectrum)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, impl={self.impl}"

    # ------------------------------------------------------------------ dispatch
    @property
    def uses_fft(self) -> bool:
        """Whether ``forward`` takes the FFT path for this module's configuration."""
        if self.impl == "auto":
            return use_fft(self.kernel_size)
        return self.impl == "fft"

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if x.dim() not in (3, 4):
            raise ValueError(
                f"Deconv2d expects input of shape (N, C_in, H, W) or unbatched (C_in, H, W) "
                f"with C_in={self.in_channels}; got {x.dim()}-D input of shape {tuple(x.shape)}"
            )
        if x.shape[-3] != self.in_channels:
            raise ValueError(
                f"Deconv2d expects {self.in_channels} input channels (dim -3 of "
                f"(N, C_in, H, W)); got input of shape {tuple(x.shape)}"
            )
        out_hw = (x.shape[-2] + self.kernel_size[0] - 1, x.shape[-1] + self.kernel_size[1] - 1)
        if output_size is not None:
            req = tuple(int(v) for v in output_size)[-2:]
            if req != out_hw:
                raise ValueError(
                    f"Deconv2d (stride 1, padding 0) can only produce output size {out_hw} "
                    f"for input of shape {tuple(x.shape)}; requested {tuple(output_size)}"
                )
        if not self.uses_fft:
            return super().forward(x, output_size)
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        y = self._forward_fft(x, out_hw)
        return y.squeeze(0) if unbatched else y

    # ------------------------------------------------------------------ FFT path
    def _forward_fft(self, x: Tensor, out_hw: tuple[int, int]) -> Tensor:
        dev_type = x.device.type
        autocast_on = torch.is_autocast_enabled(dev_type) and x.is_floating_point()
        if autocast_on:
            out_dtype = torch.get_autocast_dtype(dev_type)
        else:
            if x.dtype != self.weight.dtype:
                raise RuntimeError(
                    f"Input type ({x.dtype}) and weight type ({self.weight.dtype}) should be "
                    "the same"
                )
            out_dtype = x.dtype
        both64 = x.dtype == torch.float64 and self.weight.dtype == torch.float64
        compute_dtype = torch.float64 if both64 else torch.float32
        s = _fft_shape(out_hw, self.pad_to_fast)
        with torch.autocast(dev_type, enabled=False):
            xc = x.to(compute_dtype)
            bias = None if self.bias is None else self.bias.to(compute_dtype)
            wf = self._spectrum(compute_dtype, s)
            y = _fft_core(xc, wf, bias, out_hw, s)
        return y.to(out_dtype)

    def _cache_allowed(self) -> bool:
        return (not self.training) and not (torch.is_grad_enabled() and self.weight.requires_grad)

    def _spectrum(self, dtype: torch.dtype, s: tuple[int, int]) -> Tensor:
        w = self.weight
        if not self._cache_allowed():
            return _weight_spectrum(w.to(dtype), s)
        key = (w._version, w.data_ptr(), w.device, w.dtype, dtype, s)
        if self._spec_key == key and self._spec_val is not None:
            return self._spec_val
        with torch.no_grad():
            val = _weight_spectrum(w.detach().to(dtype), s)
        # Holding a reference to the keyed weight's storage guarantees that a replaced
        # weight can never be reallocated at the same address while this entry lives.
        self._spec_key, self._spec_val, self._spec_ref = key, val, w.detach()
        return val

    def clear_spectrum_cache(self) -> None:
        """Drop the cached weight spectrum (needed only after edits via ``weight.data``)."""
        self._spec_key = self._spec_val = self._spec_ref = None

    @property
    def spectrum_cached(self) -> bool:
        """Whether a weight spectrum is currently cached (for tests/diagnostics)."""
        return self._spec_val is not None

    def train(self, mode: bool = True) -> Deconv2d:
        self.clear_spectrum_cache()
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):
        self.clear_spectrum_cache()
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self.clear_spectrum_cache()
        super()._load_from_state_dict(*args, **kwargs)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state = dict(state)
        state["_spec_key"] = state["_spec_val"] = state["_spec_ref"] = None
        return state
