"""Tests for vidgen.models.deconv.Deconv2d (FFT vs direct transposed convolution).

Tolerances (all as max-abs error relative to max(1, max|reference|)):
* fp32, FFT vs nn.ConvTranspose2d (both fp32):           FP32_TOL = 1e-5
* CPU bf16 autocast, either impl vs the fp32 reference:  BF16_TOL = 2e-2 (forward),
  BF16_GRAD_TOL = 2e-2 (gradients; direct casts weights to bf16 under autocast).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from vidgen.models.deconv import Deconv2d, fast_fft_size, fft_conv_transpose2d, use_fft

FP32_TOL = 1e-5
BF16_TOL = 2e-2
BF16_GRAD_TOL = 2e-2


def assert_rel_close(actual: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    assert actual.shape == expected.shape
    actual, expected = actual.double(), expected.double()
    scale = max(1.0, expected.abs().max().item())
    err = (actual - expected).abs().max().item()
    assert err <= tol * scale, f"max abs err {err:.3g} > {tol} * {scale:.3g}"


def make_pair(c_in, c_out, k, bias=True, impl="fft", seed=0):
    torch.manual_seed(seed)
    ref = nn.ConvTranspose2d(c_in, c_out, k, bias=bias)
    mod = Deconv2d(c_in, c_out, k, bias=bias, impl=impl)
    mod.load_state_dict(ref.state_dict())
    return ref, mod


def fwd_bwd(module, x, gy, autocast=False):
    x = x.detach().clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = module(x)
    y.backward(gy.to(y.dtype))
    grads = {"x": x.grad, "weight": module.weight.grad}
    if module.bias is not None:
        grads["bias"] = module.bias.grad
    return y, grads


def test_transposed_conv_is_full_convolution():
    """The identity the FFT path relies on, checked against nn.ConvTranspose2d in fp64."""
    torch.manual_seed(0)
    ref = nn.ConvTranspose2d(3, 2, (4, 5)).double()
    x = torch.randn(2, 3, 6, 7, dtype=torch.float64)
    w = ref.weight  # (in, out, kH, kW)
    out = torch.zeros(2, 2, 6 + 3, 7 + 4, dtype=torch.float64)
    for i in range(3):
        for o in range(2):
            for a in range(4):
                for b in range(5):  # full convolution: out[p+a, q+b] += x[p, q] * w[a, b]
                    out[:, o, a : a + 6, b : b + 7] += x[:, i] * w[i, o, a, b]
    out += ref.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(ref(x), out, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fft_conv_transpose2d(x, w, ref.bias), out, rtol=1e-10, atol=1e-10)


CASES = [
    # (batch, c_in, c_out, kernel, H, W)
    (1, 1, 1, 1, 5, 7),  # kernel 1
    (3, 3, 2, 2, 6, 5),  # even kernel
    (2, 16, 3, 3, 4, 9),  # odd kernel, non-square map
    (1, 4, 5, (4, 7), 8, 3),  # rectangular kernel
    (2, 2, 3, 12, 5, 6),  # kernel larger than the input map
    (2, 16, 3, 29, 9, 7),  # demo-head kernel
]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "b{}_c{}-{}_k{}_{}x{}".format(*c))
def test_fft_matches_conv_transpose_fp32(case, bias):
    n, c_in, c_out, k, h, w = case
    ref, mod = make_pair(c_in, c_out, k, bias=bias, impl="fft")
    x = torch.randn(n, c_in, h, w)
    gy = torch.randn(n, c_out, h + mod.kernel_size[0] - 1, w + mod.kernel_size[1] - 1)
    y_ref, g_ref = fwd_bwd(ref, x, gy)
    y, g = fwd_bwd(mod, x, gy)
    assert y.dtype == torch.float32
    assert_rel_close(y, y_ref, FP32_TOL)
    assert g.keys() == g_ref.keys()
    for name in g_ref:
        assert_rel_close(g[name], g_ref[name], FP32_TOL)


@pytest.mark.parametrize(
    "case", [CASES[1], CASES[2], CASES[4]], ids=lambda c: "b{}_c{}-{}_k{}_{}x{}".format(*c)
)
def test_bf16_autocast(case):
    n, c_in, c_out, k, h, w = case
    ref, mod = make_pair(c_in, c_out, k, impl="fft")
    direct = copy.deepcopy(mod)
    direct.impl = "direct"
    x = torch.randn(n, c_in, h, w)
    gy = torch.randn(n, c_out, h + mod.kernel_size[0] - 1, w + mod.kernel_size[1] - 1)
    y32, g32 = fwd_bwd(ref, x, gy)
    y_d, g_d = fwd_bwd(direct, x, gy, autocast=True)
    y_f, g_f = fwd_bwd(mod, x, gy, autocast=True)
    assert y_d.dtype == torch.bfloat16  # what ConvTranspose2d returns under CPU autocast
    assert y_f.dtype == y_d.dtype
    for y in (y_d, y_f):
        assert_rel_close(y, y32, BF16_TOL)
    for g in (g_d, g_f):
        for name in g32:
            assert g[name].dtype == torch.float32
            assert_rel_close(g[name], g32[name], BF16_GRAD_TOL)


def test_float64_and_unbatched_and_channels_last():
    ref, mod = make_pair(3, 2, 5)
    ref, mod = ref.double(), mod.double()
    x = torch.randn(3, 4, 6, dtype=torch.float64)
    y = mod(x)
    assert y.shape == (2, 8, 10) and y.dtype == torch.float64
    torch.testing.assert_close(y, ref(x), rtol=1e-10, atol=1e-10)
    xb = torch.randn(2, 3, 7, 7, dtype=torch.float64).to(memory_format=torch.channels_last)
    torch.testing.assert_close(mod(xb), ref(xb), rtol=1e-10, atol=1e-10)


def test_paper_size_forward():
    """Paper head: 16 -> 3 channels, 35x35 -> 224x224 with a 190x190 kernel."""
    ref, mod = make_pair(16, 3, 190, impl="auto")
    assert mod.uses_fft
    x = torch.randn(1, 16, 35, 35)
    with torch.no_grad():
        y, y_ref = mod(x), ref(x)
    assert y.shape == (1, 3, 224, 224)
    assert_rel_close(y, y_ref, FP32_TOL)


def test_auto_crossover(monkeypatch):
    assert Deconv2d(16, 3, 190).uses_fft
    assert Deconv2d(16, 3, 29).uses_fft
    assert not Deconv2d(16, 3, 3).uses_fft
    assert not Deconv2d(16, 3, 1).uses_fft
    assert use_fft((14, 14)) and not use_fft((13, 13))
    assert Deconv2d(4, 4, 3, impl="fft").uses_fft
    assert not Deconv2d(4, 4, 190, impl="direct").uses_fft

    calls = []
    orig = Deconv2d._forward_fft

    def spy(self, *args):
        calls.append(self.kernel_size)
        return orig(self, *args)

    monkeypatch.setattr(Deconv2d, "_forward_fft", spy)
    Deconv2d(2, 2, 3)(torch.randn(1, 2, 4, 4))
    assert calls == []
    Deconv2d(2, 2, 20)(torch.randn(1, 2, 4, 4))
    assert calls == [(20, 20)]


def test_state_dict_round_trip_between_impls():
    torch.manual_seed(1)
    fft = Deconv2d(16, 3, 17, impl="fft")
    direct = Deconv2d(16, 3, 17, impl="direct")
    sd = fft.state_dict()
    assert set(sd) == {"weight", "bias"} == set(nn.ConvTranspose2d(16, 3, 17).state_dict())
    direct.load_state_dict(sd)
    x = torch.randn(2, 16, 6, 5)
    assert_rel_close(fft(x), direct(x), FP32_TOL)
    back = Deconv2d(16, 3, 17, impl="fft")
    back.load_state_dict(direct.state_dict())
    torch.testing.assert_close(back(x), fft(x), rtol=0, atol=0)


def _ref_out(mod, x):
    with torch.no_grad():
        return nn.functional.conv_transpose2d(x, mod.weight, mod.bias)


def test_cache_used_only_in_eval_without_grad():
    mod = Deconv2d(4, 3, 15, impl="fft")
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        mod(x)
    assert not mod.spectrum_cached  # training mode: never cached
    mod.eval()
    y = mod(x)  # grad enabled and weight requires grad: not cached, grads flow
    assert not mod.spectrum_cached
    y.sum().backward()
    assert mod.weight.grad is not None
    with torch.no_grad():
        y1 = mod(x)
        assert mod.spectrum_cached
        spec = mod._spec_val
        y2 = mod(x)
        assert mod._spec_val is spec  # reused
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    assert_rel_close(y1, _ref_out(mod, x), FP32_TOL)
    with torch.inference_mode():
        assert_rel_close(mod(x), _ref_out(mod, x), FP32_TOL)
    mod.train()
    assert not mod.spectrum_cached


def test_cache_invalidated_by_optimizer_step():
    mod = Deconv2d(4, 3, 15, impl="fft").eval()
    opt = torch.optim.SGD(mod.parameters(), lr=0.5)
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        before = mod(x)
    assert mod.spectrum_cached
    mod(x).square().sum().backward()  # still eval mode: gradient path ignores the cache
    opt.step()
    with torch.no_grad():
        after = mod(x)
    assert (after - before).abs().max() > 1e-3
    assert_rel_close(after, _ref_out(mod, x), FP32_TOL)
    with torch.no_grad():
        mod.weight.mul_(-1.0)  # any in-place update bumps weight._version
        assert_rel_close(mod(x), _ref_out(mod, x), FP32_TOL)


def test_cache_invalidated_by_load_state_dict_and_to():
    mod = Deconv2d(4, 3, 15, impl="fft").eval()
    other = Deconv2d(4, 3, 15, impl="direct")
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        mod(x)
        assert mod.spectrum_cached
        mod.load_state_dict(other.state_dict())
        assert_rel_close(mod(x), other(x), FP32_TOL)
        mod.double()
        assert not mod.spectrum_cached
        y = mod(x.double())
        assert y.dtype == torch.float64
        torch.testing.assert_close(y, _ref_out(mod, x.double()), rtol=1e-10, atol=1e-10)
        mod.float()
        assert_rel_close(mod(x), other(x), FP32_TOL)
        # replacing the weight tensor wholesale is caught by data_ptr (old storage pinned)
        mod.weight.data = torch.randn_like(mod.weight)
        assert_rel_close(mod(x), _ref_out(mod, x), FP32_TOL)


def test_errors():
    mod = Deconv2d(4, 3, 5, impl="fft")
    for bad in (torch.randn(4, 5), torch.randn(1, 1, 4, 5, 5)):
        with pytest.raises(ValueError, match=r"\(N, C_in, H, W\)"):
            mod(bad)
    for impl in ("fft", "direct"):
        with pytest.raises(ValueError, match="4 input channels"):
            Deconv2d(4, 3, 5, impl=impl)(torch.randn(2, 3, 5, 5))
    with pytest.raises(ValueError, match="impl"):
        Deconv2d(4, 3, 5, impl="winograd")
    with pytest.raises(ValueError, match="output size"):
        mod(torch.randn(1, 4, 5, 5), output_size=(10, 10))
    assert mod(torch.randn(1, 4, 5, 5), output_size=(9, 9)).shape == (1, 3, 9, 9)
    with pytest.raises(RuntimeError, match="should be the same"):
        mod(torch.randn(1, 4, 5, 5, dtype=torch.float64))


def test_fast_fft_size():
    assert [fast_fft_size(n) for n in (1, 7, 11, 13, 92, 224, 227)] == [1, 7, 12, 14, 96, 224, 240]
    with pytest.raises(ValueError):
        fast_fft_size(0)
