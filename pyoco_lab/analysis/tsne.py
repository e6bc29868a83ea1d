"""Fig. 2: t-SNE of noise maps -- inverted frames cluster by video; correlated priors reproduce that.

(a) inverted noise maps of frames from several videos, with i.i.d. reference noise around them;
(b) samples of i.i.d. noise vs the progressive prior, several frames per "video".
The clustering is also measured, so the summary does not rest on looking at a scatter plot:
the fraction of points whose nearest t-SNE neighbour is a frame of the same video (vs chance).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import plotly.graph_objects as go
import torch
from einops import rearrange
from sklearn.manifold import TSNE

from pyoco_lab import noise


def embed(points: torch.Tensor, *, perplexity: float = 10.0, seed: int = 0) -> np.ndarray:
    """2-D t-SNE embedding (N, 2) of flattened points (N, ...) with scikit-learn (PCA init, seeded)."""
    flat = points.reshape(points.shape[0], -1).double().numpy()
    perplexity = min(float(perplexity), (len(flat) - 1) / 3)  # sklearn needs perplexity < n_samples
    if perplexity <= 0:
        raise ValueError(f"t-SNE needs more points, got {len(flat)}")
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, max_iter=500)
    return tsne.fit_transform(flat)


def inverted_with_reference(maps: torch.Tensor, *, num_reference: int | None = None, seed: int = 0):
    """Fig. 2a points: inverted maps (V, F, ...) + i.i.d. reference noise; labels = video index or -1."""
    v, f = maps.shape[:2]
    num_reference = v * f if num_reference is None else num_reference
    reference = torch.randn((num_reference, *maps.shape[2:]), generator=torch.Generator().manual_seed(seed))
    points = torch.cat([rearrange(maps, "v f ... -> (v f) ..."), reference.to(maps.dtype)])
    video = np.concatenate([np.repeat(np.arange(v), f), np.full(num_reference, -1)])
    frame = np.concatenate([np.tile(np.arange(f), v), np.full(num_reference, -1)])
    return points, video, frame


def prior_samples(
    kind: str, alpha: float, *, num_videos: int, num_frames: int, shape=(3, 16, 16), seed: int = 0
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """Fig. 2b points: i.i.d. and ``kind`` prior videos; returns (points, prior 0/1, video, frame)."""
    generator = torch.Generator().manual_seed(seed)
    full = (num_videos, num_frames, *shape)
    iid = noise.sample_noise("iid", full, generator=generator)
    correlated = noise.sample_noise(kind, full, alpha, generator=generator)
    points = rearrange(torch.cat([iid, correlated]), "v f ... -> (v f) ...")
    n = num_videos * num_frames
    prior = np.repeat([0, 1], n)
    video = np.tile(np.repeat(np.arange(num_videos), num_frames), 2)
    frame = np.tile(np.arange(num_frames), 2 * num_videos)
    return points, prior, video, frame


def neighbour_same_video(embedding: np.ndarray, video: np.ndarray) -> tuple[float, float]:
    """(fraction of video points whose nearest neighbour is the same video, chance level of that).

    Points labelled -1 (reference noise) take part as neighbours but are not scored. Chance: a random
    other point is from the same video with probability (F_v - 1) / (N - 1).
    """
    distances = np.linalg.norm(embedding[:, None] - embedding[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    nearest = distances.argmin(axis=1)
    scored = video >= 0
    hits = video[nearest[scored]] == video[scored]
    sizes = np.array([np.sum(video == v) for v in video[scored]])
    chance = float(np.mean((sizes - 1) / (len(video) - 1)))
    return float(hits.mean()), chance


def within_video_spread(embedding: np.ndarray, group: np.ndarray, video: np.ndarray) -> dict[int, float]:
    """Mean distance between frames of the same video in the embedding, per group (e.g. prior 0/1)."""
    spread = {}
    for g in np.unique(group):
        values = []
        for v in np.unique(video[group == g]):
            pts = embedding[(group == g) & (video == v)]
            d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
            values.append(d[np.triu_indices(len(pts), 1)].mean())
        spread[int(g)] = float(np.mean(values))
    return spread


def scatter_figure(
    embedding: np.ndarray, video: np.ndarray, *, title: str, reference_label: str = "i.i.d. noise"
):
    """Static Fig. 2-style scatter: reference points grey in the background, one colour per video."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2), layout="constrained")
    ref = video < 0
    if ref.any():
        ax.scatter(*embedding[ref].T, s=10, c="lightgrey", label=reference_label)
    cmap = plt.get_cmap("tab10")
    for i, v in enumerate(np.unique(video[~ref])):
        ax.scatter(*embedding[video == v].T, s=14, color=cmap(i % 10), label=f"video {v}")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=6, loc="best", markerscale=0.8)
    return fig


def scatter_plotly(
    embedding: np.ndarray, labels: list[str], video: np.ndarray, frame: np.ndarray, *, title: str
):
    """Interactive scatter: one trace per label, hover shows the video and frame of each point."""
    fig = go.Figure()
    labels = np.asarray(labels)
    for name in dict.fromkeys(labels):
        mask = labels == name
        fig.add_trace(
            go.Scattergl(
                x=embedding[mask, 0],
                y=embedding[mask, 1],
                mode="markers",
                name=str(name),
                customdata=np.stack([video[mask], frame[mask]], axis=1),
                hovertemplate="video %{customdata[0]}, frame %{customdata[1]}<extra>%{fullData.name}</extra>",
                marker={"size": 6, "color": "lightgrey"} if name.startswith("i.i.d.") else {"size": 7},
            )
        )
    fig.update_layout(title=title, width=620, height=520, xaxis_visible=False, yaxis_visible=False)
    return fig
