"""PYoCo Lab: noise priors for video diffusion (Ge et al., 2023), reproduced and extended.

Modules (data flows one way, top to bottom):

- :mod:`pyoco_lab.noise` -- i.i.d., mixed (eq. 3) and progressive (eq. 4) video noise priors.
- :mod:`pyoco_lab.edm` -- EDM preconditioning, loss (eq. 1), samplers and ODE inversion (eq. 2).
- :mod:`pyoco_lab.models` -- the image/video U-Net, its inflation, the cascade, text encoders.
- :mod:`pyoco_lab.data` -- embedded default dataset and the UCF-101 pipeline.
- :mod:`pyoco_lab.training` -- image pre-training and video finetuning (one module per concern).
- :mod:`pyoco_lab.metrics` -- Frechet distances, FVD/IS/FID, lab metrics, temporal statistics.
"""

__version__ = "0.1.0"
