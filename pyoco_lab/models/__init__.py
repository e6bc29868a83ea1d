"""The video U-Net of PYoCo: image model, video inflation, the paper's configs, cascade, text encoders.

Public API::

    UNetConfig, CONFIGS, get_config, count_parameters    # Tables G-M and CPU-scale configs
    VideoUNet                                             # net(x, noise_labels, *, class_labels, ...)
    inflate, image_state_dict_compatible                  # image checkpoint -> video model (A.1)
    build_denoiser                                        # edm.Denoiser(VideoUNet(config))
    load_text_encoder, text_dim, encode_prompts, drop_text  # text conditioning (A.1 (8), Table F)
"""

from __future__ import annotations

from pyoco_lab.edm import Denoiser
from pyoco_lab.models.config import UNetConfig
from pyoco_lab.models.configs import CONFIGS, at_resolution, count_parameters, get_config
from pyoco_lab.models.inflate import image_state_dict_compatible, inflate
from pyoco_lab.models.text import drop_text, encode_prompts, load_text_encoder, text_dim
from pyoco_lab.models.unet import VideoUNet


def build_denoiser(config: UNetConfig, sigma_data: float = 0.5):
    """The EDM-preconditioned network D(x; sigma) = c_skip x + c_out F(c_in x, c_noise) around VideoUNet."""
    return Denoiser(VideoUNet(config), sigma_data=sigma_data)


__all__ = [
    "CONFIGS",
    "UNetConfig",
    "VideoUNet",
    "at_resolution",
    "build_denoiser",
    "count_parameters",
    "drop_text",
    "encode_prompts",
    "get_config",
    "image_state_dict_compatible",
    "inflate",
    "load_text_encoder",
    "text_dim",
]
