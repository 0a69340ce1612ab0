import pytest
import torch
from torch import nn

from vidgen.models import FrozenVGG16
from vidgen.models.backbone import IMAGENET_FILE, LAYERS, imagenet_weights_path


@pytest.fixture(autouse=True)
def seeded():
    """Each test starts from one seed, so the suite's memo of VGG16's random init (conftest's
    ``MemoisedVGG16``) builds its first backbone in milliseconds instead of seconds."""
    torch.manual_seed(0)


@pytest.mark.slow
def test_paper_feature_size_at_224():
    backbone = FrozenVGG16("pool5")
    assert backbone.feature_shape(224) == (512, 7, 7)
    with torch.no_grad():
        out = backbone(torch.rand(1, 3, 224, 224))
    assert out.shape == (1, 512, 7, 7) and out[0].numel() == 25088


@pytest.mark.parametrize(
    "layer,shape", [("pool3", (256, 4, 4)), ("relu2_2", (128, 16, 16)), ("pool1", (64, 16, 16))]
)
def test_smaller_cuts(layer, shape):
    backbone = FrozenVGG16(layer)
    assert backbone.feature_shape(32) == shape
    assert backbone(torch.rand(2, 3, 32, 32)).shape == (2, *shape)


def test_frozen_and_eval_even_inside_training_parent():
    parent = nn.Sequential(FrozenVGG16("pool2"), nn.Conv2d(128, 4, 1))
    parent.train()
    backbone = parent[0]
    assert not backbone.training and all(not m.training for m in backbone.modules())
    assert not any(p.requires_grad for p in backbone.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    parent(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the input
    assert all(p.grad is None for p in backbone.parameters())


def test_taps_match_forward():
    backbone = FrozenVGG16("pool3")
    x = torch.rand(2, 3, 32, 32)
    relu22, pool3 = backbone.taps(x, ["relu2_2", "pool3"])
    assert relu22.shape == (2, 128, 16, 16)
    assert torch.allclose(pool3, backbone(x))
    with pytest.raises(ValueError, match="past"):
        backbone.taps(x, ["relu5_3"])


def test_weights_from_file_round_trip(tmp_path):
    torch.manual_seed(0)
    source = FrozenVGG16("pool5")
    path = tmp_path / "vgg.pth"
    torch.save({f"features.{k}": v for k, v in source.features.state_dict().items()}, path)
    loaded = FrozenVGG16("pool2", weights=str(path))
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(loaded(x), source.taps(x, ["pool2"])[0])


def test_imagenet_offline_error_names_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert imagenet_weights_path() == tmp_path / "hub" / "checkpoints" / IMAGENET_FILE
    with pytest.raises(FileNotFoundError) as err:
        FrozenVGG16(weights="imagenet")
    message = str(err.value)
    assert IMAGENET_FILE in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "TORCH_HOME" in message


def test_unknown_layer_and_missing_file():
    with pytest.raises(ValueError, match="pool5"):
        FrozenVGG16("pool6")
    with pytest.raises(FileNotFoundError, match="null"):
        FrozenVGG16(weights="/nonexistent/vgg.pth")
    assert LAYERS["pool5"] == 30


def test_the_suites_memoised_vgg16_is_torchvisions(memoised_vgg16):
    """The test suite's memo (``conftest.MemoisedVGG16``) gives what torchvision gives: the same
    layers and weights, and the RNG left where torchvision leaves it."""
    torch.manual_seed(11)
    memoised_vgg16()  # a miss (the real call) or a hit: from here on a hit
    torch.manual_seed(11)
    hit = memoised_vgg16().features
    after_hit = torch.get_rng_state()
    torch.manual_seed(11)
    real = memoised_vgg16.real(weights=None).features
    assert torch.equal(after_hit, torch.get_rng_state())
    assert repr(hit) == repr(real)
    hit_state, real_state = hit.state_dict(), real.state_dict()
    assert hit_state.keys() == real_state.keys()
    assert all(torch.equal(hit_state[k], real_state[k]) for k in real_state)
