"""Evaluation: metric values on known inputs, cross-checked against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import yaml
from numpy.lib.stride_tricks import sliding_window_view
from torchmetrics.image import PeakSignalNoiseRatio

from vidgen.cli import CONFIG_DIR
from vidgen.evaluation import (
    SOURCES,
    HorizonMetrics,
    baselines,
    collapse_score,
    format_table,
    frame_change,
    frame_metrics,
    frame_mse,
    frame_psnr,
    frame_ssim,
    horizon_rows,
    load_results,
    plot_horizons,
    results_to_json,
)


def reference_ssim(x: np.ndarray, y: np.ndarray, size: int = 11) -> float:
    """SSIM of two ``(C, H, W)`` images in [0, 1] (Wang et al. 2004), float64 numpy.

    Gaussian window of ``size`` pixels (sigma 1.5 at 11 px, scaled alike below), population
    statistics, C1 = 0.01^2, C2 = 0.03^2; like torchmetrics, the images are reflect-padded and
    the SSIM map is averaged over every pixel (scikit-image would crop the borders instead).
    """
    sigma = 1.5 * size / 11
    g = np.exp(-((np.arange(size) - (size - 1) / 2) ** 2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    pad = size // 2

    def blur(img: np.ndarray) -> np.ndarray:
        img = np.pad(img, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
        windows = sliding_window_view(img, (size, size), axis=(1, 2))
        return np.einsum("chwij,ij->chw", windows, w)

    x, y = x.astype(np.float64), y.astype(np.float64)
    c1, c2 = 0.01**2, 0.03**2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    ssim = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(ssim.mean())


def smooth_video(b: int, t: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Videos with structure (SSIM is meaningful): blurred noise in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b * t, 3, size // 4, size // 4, generator=g)
    fine = torch.nn.functional.interpolate(coarse, size=size, mode="bilinear")
    return fine.view(b, t, 3, size, size)


# --- per-frame metrics on known inputs -------------------------------------------------------


def test_identical_frames():
    video = smooth_video(2, 3)
    m = frame_metrics(video, video.clone())
    assert all(v.shape == (2, 3) for v in m.values())
    assert torch.all(m["mse"] == 0)
    assert torch.allclose(m["psnr"], torch.full((2, 3), 100.0))  # capped by eps = 1e-10
    assert torch.allclose(m["ssim"], torch.ones(2, 3), atol=1e-5)


def test_known_noise_level_gives_known_psnr():
    target = torch.full((1, 2, 3, 16, 16), 0.5)
    signs = torch.ones(16, 16)
    signs[::2] = -1  # +-0.1 everywhere: MSE exactly 0.01, PSNR exactly 20 dB
    pred = target + 0.1 * signs
    assert torch.allclose(frame_mse(pred, target), torch.full((1, 2), 0.01))
    assert torch.allclose(frame_psnr(pred, target), torch.full((1, 2), 20.0), atol=1e-4)


def test_psnr_matches_the_direct_formula_and_torchmetrics():
    target = smooth_video(2, 4, seed=1)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(2))
    pred = (target + 0.05 * noise * torch.arange(1, 5).view(1, 4, 1, 1, 1)).clamp(0, 1)
    ours = frame_psnr(pred, target)
    t, p = target.double().numpy(), pred.double().numpy()
    for b in range(2):
        for s in range(4):
            mse = np.mean((p[b, s] - t[b, s]) ** 2)
            assert ours[b, s].item() == pytest.approx(10 * math.log10(1 / mse), abs=1e-3)
            tm = PeakSignalNoiseRatio(data_range=1.0)(pred[b, s : s + 1], target[b, s : s + 1])
            assert ours[b, s].item() == pytest.approx(tm.item(), abs=1e-3)
    assert torch.all(ours[:, 1:] < ours[:, :-1])  # noise grows with the step, PSNR falls


@pytest.mark.parametrize("size", [32, 8, 6])  # 8 px: the window shrinks to 7, 6 px: to 5
def test_ssim_matches_an_independent_implementation(size):
    target = smooth_video(2, 3, size=size, seed=3)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(4))
    pred = (target + 0.1 * noise).clamp(0, 1)
    ours = frame_ssim(pred, target)
    window = min(11, size if size % 2 else size - 1)
    for b in range(2):
        for s in range(3):
            ref = reference_ssim(pred[b, s].numpy(), target[b, s].numpy(), size=window)
            assert ours[b, s].item() == pytest.approx(ref, abs=2e-4)


def test_ssim_is_per_frame_not_volumetric():
    target = smooth_video(1, 3, seed=5)
    pred = target.clone()
    pred[:, 1] = 1 - pred[:, 1]  # only the middle frame is wrong
    ssim = frame_ssim(pred, target)[0]
    assert ssim[0] == pytest.approx(1, abs=1e-5) and ssim[2] == pytest.approx(1, abs=1e-5)
    assert ssim[1] < 0.5


# --- baselines and collapse --------------------------------------------------------------------


def test_baselines():
    context = torch.rand(2, 4, 3, 8, 8)
    out = baselines(context, horizon=5)
    assert out["copy_last"].shape == out["mean_frame"].shape == (2, 5, 3, 8, 8)
    for t in range(5):
        assert torch.equal(out["copy_last"][:, t], context[:, -1])
        assert torch.allclose(out["mean_frame"][:, t], context.mean(1))


def test_copy_last_is_perfect_on_a_still_video():
    still = torch.rand(2, 1, 3, 8, 8).expand(-1, 6, -1, -1, -1)
    copy = baselines(still[:, :2], horizon=4)["copy_last"]
    assert torch.all(frame_mse(copy, still[:, 2:]) == 0)


def test_collapse_score():
    target = smooth_video(2, 6, seed=6)
    constant = target[:, :1].expand(-1, 6, -1, -1, -1)
    assert collapse_score(constant, target).item() == 0.0
    assert collapse_score(target, target).item() == pytest.approx(1.0)
    assert collapse_score(0.5 * target, target).item() == pytest.approx(0.5, rel=1e-5)
    assert torch.all(frame_change(constant) == 0)


# --- HorizonMetrics, long rollouts, reports ----------------------------------------------------


def test_horizon_metrics_accumulate_like_one_big_batch():
    horizon = 16  # 2x an 8-frame training clip: rollouts past the training length are scored
    target = smooth_video(6, horizon, size=16, seed=7)
    pred = (target + 0.05 * torch.randn(target.shape)).clamp(0, 1)
    context = smooth_video(6, 4, size=16, seed=8)
    whole, parts = HorizonMetrics(horizon), HorizonMetrics(horizon)
    whole.update(pred, target, context)
    for sl in (slice(0, 1), slice(1, 4), slice(4, 6)):
        parts.update(pred[sl], target[sl], context[sl])
    a, b = whole.compute(), parts.compute()
    assert set(a) == {f"{s}/{m}" for s in SOURCES for m in ("mse", "psnr", "ssim")} | {
        "model/collapse"
    }
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    direct = frame_metrics(pred, target)
    for name, values in direct.items():
        assert torch.allclose(a[f"model/{name}"], values.mean(0), atol=1e-5)
        assert a[f"model/{name}"].shape == (horizon,)
    copy = frame_metrics(baselines(context, horizon)["copy_last"], target)
    assert torch.allclose(a["copy_last/psnr"], copy["psnr"].mean(0), atol=1e-4)
    assert a["model/collapse"].item() == pytest.approx(
        collapse_score(pred, target).item(), rel=1e-5
    )


def test_horizon_metrics_reject_wrong_horizon():
    metrics = HorizonMetrics(4)
    with pytest.raises(ValueError, match="horizon"):
        metrics.update(
            torch.rand(1, 3, 3, 8, 8), torch.rand(1, 3, 3, 8, 8), torch.rand(1, 2, 3, 8, 8)
        )


def test_demo_config_evaluates_twice_the_training_length():
    cfg = yaml.safe_load((CONFIG_DIR / "demo.yaml").read_text())
    data, model = cfg["data"]["init_args"], cfg["model"]["init_args"]
    horizon = data["eval_frames"] - model["context_frames"]
    assert horizon >= 2 * data["frames"]


@pytest.fixture
def results():
    metrics = HorizonMetrics(6)
    target = smooth_video(2, 6, size=16)
    metrics.update((target + 0.1).clamp(0, 1), target, smooth_video(2, 3, size=16, seed=9))
    return metrics.compute()


def test_format_table_blocks(results):
    text = format_table(results, trained_steps=4)
    for title in ("MSE", "PSNR", "SSIM", "collapse score"):
        assert title in text
    assert text.count("beyond the training length") == 3
    psnr = text.split("PSNR")[1].split("SSIM")[0]
    assert all(s in psnr for s in SOURCES)
    assert f"{results['model/psnr'][5].item():.4f}" in psnr
    assert "mean" in psnr


def test_plot_json_and_rows(results, tmp_path):
    png = tmp_path / "sub" / "horizons.png"
    fig = plot_horizons(results, png, trained_steps=3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines) == len(SOURCES) + 1  # + the training-length marker
    path = tmp_path / "metrics.json"
    path.write_text(__import__("json").dumps(results_to_json(results)))
    back = load_results(path)
    assert all(torch.allclose(back[k], results[k].float()) for k in results)
    columns, rows = horizon_rows(results)
    assert columns == ["step", "source", "mse", "psnr", "ssim"]
    assert len(rows) == 6 * len(SOURCES)
