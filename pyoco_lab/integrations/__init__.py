"""Bridges to other diffusion stacks. ``pyoco_lab.integrations.diffusers``: priors in diffusers pipelines
(docs/diffusers.md); it imports nothing from diffusers itself, so it loads without the extra installed."""
