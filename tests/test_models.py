from functools import partial

import pytest
import torch

from vidgen.models import (
    ConvLSTMCore,
    LSTMCore,
    MultiScaleHead,
    UpsampleDeconvHead,
    VideoLoss,
    kl_divergence,
)
from vidgen.models.backbone import FrozenVGG16


def test_lstm_core_shapes_and_stepwise_equivalence():
    torch.manual_seed(0)
    core = LSTMCore((8, 2, 2), hidden_size=16)
    x = torch.randn(3, 5, 8, 2, 2)
    y, _ = core(x)
    assert y.shape == (3, 5, 16, 1, 1) and core.out_shape == (16, 1, 1)
    state, steps = None, []
    for t in range(5):  # one step at a time gives the same outputs as the whole sequence
        out, state = core(x[:, t : t + 1], state)
        steps.append(out)
    assert torch.allclose(torch.cat(steps, 1), y, atol=1e-6)


def test_convlstm_core_keeps_layout_and_steps():
    torch.manual_seed(0)
    core = ConvLSTMCore((4, 6, 6), hidden_channels=5, num_layers=2)
    x = torch.randn(2, 4, 4, 6, 6)
    y, _ = core(x)
    assert y.shape == (2, 4, 5, 6, 6)
    y2, _ = core(x[:, 2:], core(x[:, :2])[1])
    assert torch.allclose(y2, y[:, 2:], atol=1e-6)


@pytest.mark.parametrize("size,kernel,base", [(224, 190, 7), (64, 29, 8), (32, 13, 4)])
def test_head_vector_input_sizes_and_range(size, kernel, base):
    head = UpsampleDeconvHead((32, 1, 1), size, channels=4, base_size=base, kernel_size=kernel)
    out = head(torch.randn(2, 32, 1, 1) * 10)
    assert out.shape == (2, 3, size, size)
    assert out.min() >= 0 and out.max() <= 1
    assert head.upsampled == size - kernel + 1


def test_paper_head_is_a_pure_reshape_when_sizes_match():
    head = UpsampleDeconvHead((16 * 7 * 7, 1, 1), 224)  # paper: 784-vector -> 16x7x7 -> 35 -> 224
    assert isinstance(head.project.proj, torch.nn.Identity)
    assert head.deconv.weight.shape == (16, 3, 190, 190)
    assert head(torch.randn(1, 784, 1, 1)).shape == (1, 3, 224, 224)


def test_head_map_input_uses_its_own_size():
    head = UpsampleDeconvHead((5, 8, 8), 32, channels=4, kernel_size=9)
    assert head(torch.randn(3, 5, 8, 8)).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="kernel_size"):
        UpsampleDeconvHead((5, 1, 1), 32, kernel_size=33)


@pytest.mark.parametrize("head_cls", [UpsampleDeconvHead, MultiScaleHead])
def test_clamp_activation_clips_values_but_passes_gradients(head_cls):
    kwargs = {"kernel_size": 9} if head_cls is UpsampleDeconvHead else {"kernel_sizes": (9, 3)}
    torch.manual_seed(0)
    head = head_cls((6, 8, 8), 32, activation="clamp", **kwargs)
    z = (torch.randn(2, 6, 8, 8) * 10).requires_grad_()
    logits = head.logits(z)
    assert (logits < 0).any() and (logits > 1).any()  # both ends are clipped below
    out = head(z)
    assert torch.equal(out, logits.clamp(0, 1))
    weights = torch.randn_like(out)
    (grad_out,) = torch.autograd.grad((out * weights).sum(), z)
    (grad_logits,) = torch.autograd.grad((head.logits(z) * weights).sum(), z)
    assert torch.allclose(grad_out, grad_logits)  # straight through, even where clipped
    sigmoid = head_cls((6, 8, 8), 32, **kwargs)
    sigmoid.load_state_dict(head.state_dict())
    assert sigmoid.activation == "sigmoid"
    assert torch.allclose(sigmoid(z), torch.sigmoid(logits))
    with pytest.raises(ValueError, match="activation must be 'sigmoid' or 'clamp'"):
        head_cls((6, 8, 8), 32, activation="relu", **kwargs)


def test_loss_terms_and_errors():
    pred, target = torch.rand(2, 3, 3, 16, 16), torch.rand(2, 3, 3, 16, 16)
    mse = VideoLoss()(pred, target)
    assert torch.allclose(mse["loss"], ((pred - target) ** 2).mean())
    both = VideoLoss(mse=1.0, l1=0.5)(pred, target)
    assert torch.allclose(both["loss"], both["mse"] + both["l1"])
    backbone = FrozenVGG16("pool2")
    perc = VideoLoss(mse=0.0, perceptual=1.0, perceptual_layers=("relu1_2", "relu2_2"))
    assert perc(target, target, backbone)["loss"] == 0
    assert perc(pred, target, backbone)["loss"] > 0
    with pytest.raises(ValueError, match="backbone"):
        perc(pred, target)
    with pytest.raises(ValueError, match="positive"):
        VideoLoss(mse=0.0)(pred, target)


def test_kl_closed_form():
    mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    assert kl_divergence(mu, logvar) == 0
    mu, logvar = torch.full((2, 5), 2.0), torch.full((2, 5), 0.5)
    expected = 5 * 0.5 * (4 + torch.exp(torch.tensor(0.5)) - 1 - 0.5)
    assert torch.allclose(kl_divergence(mu, logvar), expected)


def test_factories_build_cores():
    core = partial(ConvLSTMCore, hidden_channels=3)((4, 2, 2))
    assert core.out_shape == (3, 2, 2)
