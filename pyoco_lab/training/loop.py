"""The training loop: image pre-training on frames, then video finetuning with a noise prior
(Section 5, A.3). It reads top to bottom as the algorithm:

1. build the data and the network -- for finetuning, the image model inflated into a video model
   (Section 4 / A.1) -- its EMA copy and the optimiser (Adam / AdamW, A.3 / Table F);
2. for each step: take a batch (clips, optionally with appended images, A.1 (7)), draw the
   training noise from the run's prior (i.i.d., mixed eq. 3 or progressive eq. 4), draw
   sigma from EDM's log-normal, take the denoising loss of eq. 1 (over ``grad_accumulation``
   micro-batches, gradients summed), step the optimiser (linear warm-up, A.3), update the EMA,
   log, checkpoint and save samples.

``phase="image"`` trains single frames with i.i.d. noise; ``phase="video"`` trains clips with the
run's prior, starting from ``init`` (an image run) or from scratch (the baseline of Table 5 /
Fig. 7). ``stage`` picks the cascade model (Fig. 3): the base model; the temporal interpolation
model, given each clip's every k-th frame (A.1 (3)) and started from a base video run (A.1 (6));
or super-resolution, given the clip at 1/4 size upsampled back. Every random draw of step ``s``
comes from generators seeded by ``(seed, s)``
(:mod:`pyoco_lab.training.randomness`), so a resumed run replays exactly the steps it missed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from pyoco_lab import data, devices, edm, noise, provenance
from pyoco_lab.models.unet import is_temporal_key
from pyoco_lab.training import batches, checkpoints, distributed, monitoring, networks, precision
from pyoco_lab.training.config import TrainConfig, text_specs, validate_config
from pyoco_lab.training.randomness import (
    STREAM_DROPOUT,
    STREAM_NOISE,
    STREAM_SIGMA,
    step_generator,
    step_seed,
)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped and its last good checkpoint is kept."""


# ----------------------------------------------------------------------------------------------
# The pieces of one step, each named after what the paper calls it.


def prior_noise(
    config: TrainConfig, step: int, global_shape: tuple[int, ...], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The training noise eps of the whole global batch of ``step`` (every rank takes its slice).

    Images get i.i.d. noise; clips get the run's prior (eq. 3 / eq. 4), with i.i.d. noise for
    frames appended after the ``num_frames`` video frames of a joint batch. Drawn on ``device`` by a
    generator there, seeded by (seed, step): on a GPU no host-side draw and copy per step (0.1-0.2 s
    a video step), on the CPU the very numbers of a CPU run, so resume stays bitwise.
    """
    g = step_generator(config.seed, STREAM_NOISE, step, device=device)
    if len(global_shape) == 4:  # images
        return torch.randn(global_shape, generator=g, device=device)
    return noise.sample_joint_noise(
        config.noise,
        global_shape,
        config.alpha,
        num_video_frames=config.num_frames,
        generator=g,
        device=device,
    )


def training_sigma(config: TrainConfig, step: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """sigma of the whole global batch: ln(sigma) ~ N(P_mean, P_std^2) (EDM, Section 3), on ``device``."""
    return edm.sample_training_sigma(
        config.batch_size,
        p_mean=config.p_mean,
        p_std=config.p_std,
        generator=step_generator(config.seed, STREAM_SIGMA, step, device=device),
        device=device,
    )


def micro_batch_inputs(
    config: TrainConfig,
    step: int,
    rows: slice,
    local: slice,
    x: torch.Tensor,
    labels: torch.Tensor,
    image_labels: torch.Tensor | None,
    class_conditional: bool,
    captions: batches.CaptionBank | None,
) -> tuple[torch.Tensor, dict]:
    """(clean x, network conditioning) of one micro-batch: ``rows`` of the global batch, which are
    ``local`` of this rank's ``x`` / ``labels`` (and ``image_labels``, N per clip). Every frame its own
    conditioning: a joint batch's appended images keep their own labels and captions (A.1 (7)), per
    frame; plain batches are conditioned per clip. Dropout draws are the global batch's, at ``rows``."""
    x, labels = x[local], labels[local]
    if image_labels is not None:
        n = config.joint_images
        image_labels = image_labels[local.start * n : local.stop * n]
    cond_labels = (
        batches.dropped_labels(config, step, labels, rows, image_labels) if class_conditional else None
    )
    video_frames = config.num_frames if config.phase == "video" else None
    cond = batches.network_conditioning(cond_labels, video_frames, x)
    if captions is not None:
        cond.update(captions.conditioning(labels, config, step, rows.start, rows.stop, image_labels))
    stage_cond = batches.stage_condition(config, x)  # interpolation / SR: conditioning frames
    if stage_cond is not None:
        cond["cond"] = stage_cond
    return x, cond


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up to the base rate over ``warmup_steps`` (A.3), constant afterwards; with
    ``decay_steps`` the last N steps fall linearly towards zero (warm-up, stable, decay), so the final
    weights are not a snapshot of the constant-rate noise around the optimum."""
    scale = 1.0
    if config.warmup_steps:
        scale = min(scale, (step + 1) / config.warmup_steps)
    if config.decay_steps:
        scale = min(scale, (config.steps - step) / config.decay_steps)
    return config.lr * scale


def build_optimizer(config: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Adam (A.3, UCF-101) or AdamW (Table F) with the config's betas and weight decay.

    ``fused=True``: one kernel updates every parameter (CPU and CUDA alike), where the per-parameter
    loop launched ~10 ops per tensor -- most of a GPU step's launches. Each run takes the same path
    every step, so a resumed CPU run stays bitwise identical to an uninterrupted one.

    The finetuning levers of issue #38: ``train_layers="temporal"`` freezes every spatial layer (the image
    model stays as it was; only the new temporal layers learn), ``temporal_lr_scale`` gives the temporal
    layers their own learning rate (each param group's ``lr_scale`` multiplies :func:`learning_rate`).
    """
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    options = dict(
        lr=config.lr, betas=(config.beta1, config.beta2), weight_decay=config.weight_decay, fused=True
    )
    if config.train_layers == "all" and config.temporal_lr_scale == 1.0:
        return cls(model.parameters(), **options)
    spatial, temporal = [], []
    for name, parameter in model.named_parameters():
        (temporal if is_temporal_key(name) else spatial).append(parameter)
    if not temporal:
        raise ValueError("--train-layers temporal / --temporal-lr-scale: this model has no temporal layers")
    if config.train_layers == "temporal":
        for parameter in spatial:
            parameter.requires_grad_(False)
        spatial = []
    groups = [{"params": temporal, "lr_scale": config.temporal_lr_scale}]
    if spatial:
        groups.insert(0, {"params": spatial, "lr_scale": 1.0})
    return cls(groups, **options)


def clip_gradients(model: torch.nn.Module, grad_clip: float) -> torch.Tensor:
    """The total gradient norm (a device tensor, no host sync), gradients scaled to ``grad_clip`` if
    positive. foreach: one norm and one scale over all gradients, not two ops per parameter."""
    max_norm = grad_clip if grad_clip > 0 else float("inf")
    return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm, foreach=True)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, step: int, decay: float) -> None:
    """ema <- d ema + (1 - d) model with d = min(decay, (1 + t) / (10 + t)).

    The ramp keeps short runs from averaging in the random initialisation (a fixed 0.9999
    needs ~10^4 steps before the average forgets it). One foreach lerp over all parameters.
    """
    d = min(decay, (1.0 + step) / (10.0 + step))
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - d)  # no_grad: no detach
    buffers = list(ema.buffers())
    if buffers:
        torch._foreach_copy_(buffers, list(model.buffers()))


@contextlib.contextmanager
def run_determinism(config: TrainConfig) -> Iterator[None]:
    """The run's determinism, switched on for the run and back to what it was afterwards.

    ``deterministic`` runs use deterministic kernels (and no cuDNN autotuning); the others may autotune.
    A notebook kernel that trains and then samples gets its previous settings back, not a process
    left in deterministic mode. ``CUBLAS_WORKSPACE_CONFIG`` is set by :func:`train` before any CUDA
    work, since cuBLAS reads it only when it first creates a handle.
    """
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    torch.backends.cudnn.benchmark = not config.deterministic
    torch.backends.cudnn.deterministic = config.deterministic
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[2:]


def _diverged(bad_step: int, checked_at: int, run_dir: Path) -> TrainingDiverged:
    last = checkpoints.latest_checkpoint(run_dir)
    return TrainingDiverged(
        f"loss became non-finite (NaN or inf) at step {bad_step + 1}; stopped at step {checked_at}, the "
        "next log, checkpoint or sample, before writing anything from those steps. "
        f"The last good checkpoint is {last or 'none (none written yet)'}. Lower --lr, "
        "raise --warmup-steps or set --grad-clip, then rerun with --resume"
    )


# ----------------------------------------------------------------------------------------------
# The loop.


def train(
    config: TrainConfig,
    out_dir: str | os.PathLike,
    *,
    init: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> Path:
    """Train per ``config`` into ``out_dir`` and return the run folder.

    ``init`` (video phase): an image run folder or checkpoint to inflate; without it the video
    model starts from scratch (the baseline). ``init`` in the image phase: an image model (run,
    checkpoint or ``pretrained:NAME``) of the same architecture whose EMA weights the run starts from.
    ``resume=True`` continues the newest checkpoint. A folder that already holds this finished run
    (same config and init) is returned at once, so notebooks can call ``train`` unconditionally.
    ``command``: what started this part, recorded in ``RUN/history.jsonl`` (the CLI passes its
    command line).
    """
    config = validate_config(config)
    if config.deterministic:
        # Before any CUDA work of the run: cuBLAS reads it only when it creates its first handle.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    run_dir = Path(out_dir)
    env = distributed.DistEnv.from_env()
    env.micro_batches(config.batch_size, config.grad_accumulation)  # raises if the batch does not split
    networks.check_stage_fits(config)  # fail on a --model of another stage before any work
    if init is not None:  # fail on a bad --init before the run folder is even created
        networks.check_init_fits(checkpoints.describe_source(init)[0], config, init)
    if config.dataset == "ucf101":  # missing data is refused before the run folder (and its .lock) exists
        data.resolve_ucf101(config.data_root)
    if config.precision == "auto" and (run_dir / checkpoints.CONFIG_FILE).is_file():
        # An existing run keeps the precision it recorded when it started: a resume is bitwise only in the
        # same precision, and a re-measured "auto" could pick the other one.
        config = dataclasses.replace(config, precision=checkpoints.load_config(run_dir).precision)
    # One writer per run folder (rank 0 holds the lock for the whole job).
    with checkpoints.RunLock(run_dir) if env.is_main else contextlib.nullcontext():
        plan = checkpoints.prepare_run(config, run_dir, init, resume)
        if plan.mode == "done":
            return run_dir
        if plan.skipped and env.is_main:
            for folder, reason in plan.skipped:
                print(f"note: skipping checkpoint {folder.name}: {reason}", file=sys.stderr)
                if folder.is_dir():
                    checkpoints.quarantine(folder, "unreadable")
            print(f"note: resuming {run_dir} from {plan.checkpoint.name} instead", file=sys.stderr)
        with run_determinism(config):
            training_loop(config, run_dir, plan, env=env, init=init, progress=progress, command=command)
    return run_dir


def training_loop(
    config: TrainConfig,
    run_dir: Path,
    plan: checkpoints.RunPlan,
    *,
    env: distributed.DistEnv,
    init: str | os.PathLike | None = None,
    progress: bool = True,
    command: str | None = None,
) -> None:
    """Section 5 / A.3 as code: build, then for each step batch, noise, sigma, loss, update, EMA, log."""
    # 1. Build. Everything that can fail on bad input happens before any training work.
    device = devices.resolve_device(config.device, env.local_rank)
    # Single-process runs build the embedded data on first use; ranks of a DDP job must not race.
    dataset, image_dataset = batches.build_datasets(
        config, build_missing=env.world_size == 1, progress=progress and env.is_main
    )
    num_classes = batches.num_classes_of(dataset) if config.class_conditional else 0
    if config.class_conditional and num_classes < 1:
        raise ValueError(f"dataset {config.dataset!r} has no class labels; drop --class-conditional")
    captions = (
        batches.CaptionBank(config, list(getattr(dataset, "class_names", [])), device)
        if text_specs(config)[0]
        else None
    )
    if init is not None:
        image_config, image_classes = checkpoints.describe_source(init)
        networks.check_architecture_fits(image_config, image_classes, config, num_classes)
    torch.manual_seed(config.seed)  # initial weights: identical on every rank
    if init is not None and config.stage == "interpolation":  # the base video model (A.1 (6))
        base_denoiser, _ = checkpoints.load_denoiser(init, ema=True)
        model = networks.interpolation_from_base(base_denoiser, config, num_classes)
    elif init is not None and config.phase == "image":  # continuing an image model from its weights
        # (a long pre-training whose run folder was lost with its machine goes on from the shipped EMA
        # weights: fresh optimiser state and warm-up, so the continuation is not bitwise a resume)
        image_denoiser, _ = checkpoints.load_denoiser(init, ema=True)
        model = networks.build_network(config, num_classes=num_classes)
        model.load_state_dict(image_denoiser.state_dict())
    elif init is not None:  # finetuning: the image model, inflated (Section 4, A.1)
        image_denoiser, _ = checkpoints.load_denoiser(init, ema=True)
        model = networks.inflate_denoiser(image_denoiser, config, num_classes)
    else:  # image pre-training, or the video model from scratch
        model = networks.build_network(config, num_classes=num_classes)
    model = model.to(device)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = build_optimizer(config, model)

    is_distributed = distributed.init_distributed(env, device)
    start_step = 0
    if plan.mode == "resume":
        start_step = checkpoints.load_training_state(plan.checkpoint, model, ema, optimizer)
    if config.precision == "auto":  # a fresh run: resolved once, here, and recorded in config.json
        rows = config.batch_size // (env.world_size * config.grad_accumulation)
        choice = precision.choose_precision(model, config, device, rows) if env.is_main else None
        choice = distributed.from_main(choice, is_distributed)  # one measurement, one decision for all ranks
        if env.is_main:
            print(choice.message(), file=sys.stderr)
        config = dataclasses.replace(config, precision=choice.precision)
    if env.is_main and precision.emulated_bf16(config.precision, device):
        print(precision.emulated_bf16_warning(), file=sys.stderr)
    if env.is_main:
        checkpoints.write_run_meta(run_dir, config, init, num_classes, env.world_size)
    distributed.barrier(is_distributed)

    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if is_distributed else model
    rank_rows = env.batch_slice(config.batch_size)  # this rank's rows of every global batch
    # ... run as micro-batches (gradient accumulation): (shard, rows of the global batch) each.
    micro_batches = env.micro_batches(config.batch_size, config.grad_accumulation)
    # bf16: the network under autocast, the loss from its fp32 output outside it (training.precision).
    network = precision.network_call(ddp_model, config.precision, device)
    logger = monitoring.RunLogger(run_dir, config, start_step, enabled=env.is_main, progress=progress)
    sample_cond = batches.sample_condition(config, dataset, device) if env.is_main else None
    model.train()
    # The first step whose loss was not finite (-1: none), kept on the device: checked at sync points only.
    first_bad = torch.full((), -1, dtype=torch.long, device=device)
    part = {  # this invocation's line of RUN/history.jsonl, finished when the loop ends
        "command": command or "pyoco_lab.training.train (library call)",
        "from_step": start_step,
        "started": provenance.utc_now(),
        "commit": provenance.git_commit(),
        "machine": provenance.machine_description(),
        "precision": config.precision,
        "threads": torch.get_num_threads(),
        "processes": env.world_size,
    }
    started, checkpointed = time.monotonic(), start_step

    # 2. For each step: batch, prior noise, sigma, loss (eq. 1), optimiser step, EMA, log, checkpoint.
    try:
        step_data = batches.step_batches(config, dataset, image_dataset, env, start_step, device)
        for step, (x, labels, appended, image_labels) in zip(
            range(start_step, config.steps), step_data, strict=False
        ):
            x = batches.training_batch(config, x, appended, device)  # (B, F[+N], C, H, W) or (B, C, H, W)
            labels = labels.to(device, non_blocking=True)
            if image_labels is not None:  # (B * N,)
                image_labels = image_labels.to(device, non_blocking=True)
            # Drawn for the whole global batch: every rank and micro-batch takes its rows.
            eps_all = prior_noise(config, step, (config.batch_size, *x.shape[1:]), device)
            sigma_all = training_sigma(config, step, device)
            lr = learning_rate(config, step)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            optimizer.zero_grad(set_to_none=True)
            total = None  # this rank's loss: the sum of its micro-batches' scaled losses
            for shard, rows in micro_batches:
                local = slice(rows.start - rank_rows.start, rows.stop - rank_rows.start)
                x_part, cond = micro_batch_inputs(
                    config, step, rows, local, x, labels, image_labels, bool(num_classes), captions
                )
                torch.manual_seed(step_seed(config.seed, STREAM_DROPOUT, step) + shard)  # network dropout
                # DDP all-reduces the gradient in the last micro-batch's backward only, once summed
                # over all of them; no_sync must hold the forward too (DDP prepares the hook there).
                sync = not is_distributed or shard == micro_batches[-1][0]
                with contextlib.nullcontext() if sync else ddp_model.no_sync():
                    # eq. 1: lambda(sigma) |D(x + sigma eps; sigma) - x|^2
                    loss = edm.edm_loss(
                        network, x_part, eps_all[rows], sigma_all[rows], model.sigma_data, **cond
                    ).mean()
                    # Scaled by 1/N: the gradients accumulate to the mean over the rank's rows, as
                    # one micro-batch of all of them (N = 1: divided by 1, the very same numbers).
                    loss = loss / config.grad_accumulation
                    loss.backward()
                total = loss.detach() if total is None else total + loss.detach()
            reported = distributed.mean_over_ranks(total, is_distributed)
            # No host sync per step: a non-finite loss is noted on the device and acted on at the next
            # log row, checkpoint or sample (every rank sees the same all-reduced loss and stops there).
            first_bad = torch.where(torch.isfinite(reported) | (first_bad >= 0), first_bad, step)
            grad_norm = clip_gradients(model, config.grad_clip)
            optimizer.step()
            update_ema(ema, model, step, config.ema_decay)

            done = step + 1
            checkpoint_due = done % config.checkpoint_every == 0 or done == config.steps
            samples_due = env.is_main and monitoring.sample_due(config, done)
            if checkpoint_due or samples_due or monitoring.log_due(config, done):
                bad_step = int(first_bad)  # the host sync of these steps
                if bad_step >= 0:
                    raise _diverged(bad_step, done, run_dir)
            logger.step(done, reported.detach(), lr, grad_norm.detach())
            if checkpoint_due:
                if env.is_main:
                    checkpoints.save_checkpoint(
                        run_dir,
                        done,
                        model=model,
                        ema=ema,
                        optimizer=optimizer,
                        complete=done == config.steps,
                    )
                    checkpoints.prune_checkpoints(run_dir, config.keep_checkpoints)
                checkpointed = done
                if is_distributed:
                    distributed.check_in_sync(model, env, done, run_dir / "sync.json")
                distributed.barrier(is_distributed)
            if samples_due:
                samples = monitoring.save_samples(
                    config, ema, run_dir, done, device, num_classes, cond=sample_cond
                )
                logger.add_samples(done, samples)
    finally:
        logger.close()
        if env.is_main and checkpointed > start_step:  # a part that left a checkpoint to continue from
            part.update(
                to_step=checkpointed,
                ended=provenance.utc_now(),
                wall_seconds=round(time.monotonic() - started, 1),
            )
            checkpoints.append_history(run_dir, part)
    distributed.barrier(is_distributed)
