"""Every image model the lab ships loads by name into the real network and denoises (issue #23)."""

from __future__ import annotations

import pytest
import torch

from pyoco_lab.training import load_denoiser, pretrained

SHIPPED = sorted(pretrained.registry())
# the image models; the alpha zoo's video models are loaded and sampled in tests/test_alpha_zoo.py
IMAGE_MODELS = sorted(
    name for name, model in pretrained.registry().items() if model.train_config.phase == "image"
)


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_a_shipped_model_loads_by_name_and_denoises(name):
    denoiser, config = load_denoiser(pretrained.PREFIX + name, device="cpu")
    assert not denoiser.training and config.phase == "image"
    size = config.resolution
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = denoiser(x * 2.0, torch.full((2,), 2.0))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_the_presets_and_auto_init_use_the_256k_models():
    assert {"lab-tiny-16-256k", "lab-tiny-32-256k"} <= set(SHIPPED)
    for resolution in (16, 32):
        config = pretrained.get(f"lab-tiny-{resolution}-256k").train_config
        assert pretrained.default_for(config) == f"pretrained:lab-tiny-{resolution}-256k"
    # inverting: the model whose held-out inversion met the Gaussianity targets comes first
    assert pretrained.inversion_models()[0].name == "lab-tiny-32"
