"""Table 1 the paper's way: frames at random positions across each source video, the control rows
(raw pixels, i.i.d. noise), and a Gaussianity gate that fails image-like maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyoco_lab import noise
from pyoco_lab.analysis import inversion
from pyoco_lab.data import embedded


class FakeSources:
    """Clips of 16 frames from 4 sources (5 clips each); frame pixels encode (clip, frame), except
    that clip 1 of every source repeats clip 0 (overlapping windows of one shot)."""

    def __init__(self, root=None, resolution=8, split="test", num_frames=16, build_if_missing=False):
        self.video_ids = np.repeat(np.arange(4), 5)

    def __len__(self):
        return len(self.video_ids)

    def __getitem__(self, i):
        clip = i - 1 if i % 5 == 1 else i
        frames = torch.stack([torch.full((3, 8, 8), (clip * 16 + f) / 400.0 - 0.5) for f in range(16)])
        return {"video": frames, "video_id": int(self.video_ids[i]), "label": 0}


@pytest.fixture
def sampled(monkeypatch):
    monkeypatch.setattr(inversion, "EmbeddedVideoDataset", FakeSources)
    return inversion.sample_source_frames(16, resolution=8, seed=0)


def test_frames_are_spread_over_each_source_and_never_paired_with_themselves(sampled):
    ids, clips, frames = sampled["ids"], sampled["clip"], sampled["frame"]
    assert sorted(set(ids.tolist())) == [0, 1, 2, 3]
    assert all(int((ids == s).sum()) == 16 for s in range(4))  # 16 frames per source (Fig. 2's caption)
    for s in range(4):
        mine = clips[ids == s]
        assert len(set(mine.tolist())) > 1, "frames come from one short clip, not across the video"
        assert not (set(mine.tolist()) - set(range(5 * s, 5 * s + 5))), "a frame from another source"
    pixels = sampled["frames"].flatten(1)
    assert len({tuple(p.tolist()) for p in pixels}) == len(pixels), "the same frame was drawn twice"
    positions = set(zip(clips.tolist(), frames.tolist(), strict=True))
    assert len(positions) == len(clips)
    # different seeds draw different positions
    other = inversion.sample_source_frames(16, resolution=8, seed=1)
    assert not torch.equal(other["clip"], clips) or not torch.equal(other["frame"], frames)


def test_table_counts_each_unordered_pair_once(sampled):
    table = inversion.source_similarity_table(sampled["frames"], sampled["ids"])
    assert table["same_video"]["count"] == 4 * (16 * 15 // 2)
    assert table["different_video"]["count"] == (64 * 63 // 2) - 4 * (16 * 15 // 2)
    assert table["num_sources"] == 4


def test_control_rows_show_the_floor_and_the_pixel_similarity(sampled):
    g = torch.Generator().manual_seed(0)
    # maps: progressive noise per source, so same-source maps correlate, sources are independent
    maps = torch.cat([noise.sample_noise("mixed", (1, 16, 3, 8, 8), 1.0, generator=g)[0] for _ in range(4)])
    rows = inversion.table1_rows({**sampled, "maps": maps}, seed=0)
    assert set(rows) == {"noise maps (inverted)", "raw pixels", "i.i.d. noise"}
    floor = 1 / math.sqrt(3 * 8 * 8)
    iid = rows["i.i.d. noise"]
    assert abs(iid["same_video"]["mean"]) < 4 * floor / math.sqrt(iid["same_video"]["count"]) + 0.01
    assert iid["different_video"]["std"] == pytest.approx(floor, rel=0.15)  # the i.i.d. floor
    assert rows["noise maps (inverted)"]["same_video"]["mean"] == pytest.approx(0.5, abs=0.1)  # mixed a=1
    assert rows["raw pixels"]["same_video"]["count"] == rows["i.i.d. noise"]["same_video"]["count"]


def test_gaussianity_gate_fails_maps_like_todays():
    g = torch.Generator().manual_seed(3)
    white = torch.randn((64, 3, 16, 16), generator=g, dtype=torch.float64)
    assert inversion.gaussianity(white)["looks_gaussian"]
    # lag-1 autocorrelation ~0.2 at unit variance: what the undertrained 300-step model produced
    smooth = white + 0.21 * (white.roll(1, -1) + white.roll(1, -2))
    smooth = smooth / smooth.std()
    verdict = inversion.gaussianity(smooth)
    assert 0.15 < verdict["autocorrelation"] < 0.25 and abs(verdict["variance"] - 1) < 0.05
    assert not verdict["looks_gaussian"] and "neighbouring pixels correlate" in verdict["message"]
    # variance 1.105 alone fails too (the target is 1 +- 0.1)
    assert not inversion.gaussianity(white * math.sqrt(1.105 / float(white.var())))["looks_gaussian"]
    # and a different-video spread of 3x the floor
    floor = 1 / math.sqrt(3 * 16 * 16)
    assert not inversion.gaussianity(white, different_video_std=3 * floor)["looks_gaussian"]
    assert inversion.gaussianity(white, different_video_std=1.2 * floor)["floor_ratio"] == pytest.approx(1.2)


def test_the_held_out_frames_and_clips_are_built_on_a_fresh_root(tmp_path, monkeypatch):
    # Notebooks 02/03 on a fresh clone: the inversion helpers build the embedded data they need (CI once
    # failed here when no earlier test had built it). A small build config keeps the test to seconds.
    real_build = embedded.build_embedded_dataset
    small = embedded.EmbeddedBuildConfig(
        clips_per_motion=1, video_crops=1, video_window_step=32, video_frame_strides=(2,), render_size=64
    )
    monkeypatch.setattr(
        embedded, "build_embedded_dataset", lambda root, resolutions, progress: real_build(
            root, resolutions, progress, config=small
        )
    )  # fmt: skip
    assert embedded.load_manifest(tmp_path) is None
    videos, ids = inversion.load_heldout_clips(2, resolution=8, num_frames=4, root=tmp_path)
    assert videos.shape == (2, 4, 3, 8, 8) and len(set(ids.tolist())) == 2
    frames = inversion.sample_source_frames(2, resolution=8, root=tmp_path)
    assert frames["frames"].shape[1:] == (3, 8, 8) and 8 in embedded.load_manifest(tmp_path)["resolutions"]
