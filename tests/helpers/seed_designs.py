"""The seed documents' networks as Designs, pinned by hand to what the seeds print (test inputs, not goldens).

Shared by tests/build/test_build.py, test_emit.py, test_summary.py and test_saved.py.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import reject
from hypothesis import strategies as st

from archsolve.catalog import KINDS
from archsolve.core.recipe import AxisRecipe, Ranges
from archsolve.design.design import (
    ACTIVATIONS,
    MERGE_HOWS,
    OUTPUT_ACTIVATIONS,
    BuildOptions,
    Design,
    Merge,
    Step,
    make_step,
)
from archsolve.errors import InputError


def _square(**fields: int) -> list[tuple[AxisRecipe, AxisRecipe]]:
    r = AxisRecipe(**fields)
    return [(r, r)]


def dcgan_generator() -> Design:
    """Seed 001 (PyTorch DCGAN tutorial): ConvTranspose2d k4 s1 p0, then k4 s2 p1; BN but not on the output."""
    options = BuildOptions(norm="batch", activation="relu", output_activation="tanh", bias=False)
    channels = [100, 512, 256, 128, 64, 3]
    shape: tuple[int, ...] = (100, 1, 1)
    steps = []
    for i, c_out in enumerate(channels[1:]):
        recipe = _square(kernel=4, stride=1, padding=0) if i == 0 else _square(kernel=4, stride=2, padding=1)
        step = make_step(["conv_transpose"], shape, recipe, c_out, options, first=i == 0, last=i == 4)
        steps.append(step)
        shape = step.out_shape
    return Design("dcgan-generator", tuple(steps), options)


def dcgan_discriminator() -> Design:
    """Seed 001: Conv2d k4 s2 p1 four times, then k4 s1 p0 to one channel; no BN on the input layer."""
    options = BuildOptions(
        norm="batch",
        activation="leaky_relu",
        negative_slope=0.2,
        output_activation="sigmoid",
        bias=False,
        norm_first=False,
    )
    channels = [3, 64, 128, 256, 512, 1]
    shape: tuple[int, ...] = (3, 64, 64)
    steps = []
    for i, c_out in enumerate(channels[1:]):
        recipe = _square(kernel=4, stride=1, padding=0) if i == 4 else _square(kernel=4, stride=2, padding=1)
        step = make_step(["conv"], shape, recipe, c_out, options, first=i == 0, last=i == 4)
        steps.append(step)
        shape = step.out_shape
    return Design("dcgan-discriminator", tuple(steps), options)


def keras_seed_003() -> Design:
    """Seed 003's Keras model: conv+BN+ReLU, max pool, upsample, concat, two transposed convs, concat.

    Keras ``same`` with stride 1 and kernel 3 is padding 1; Keras convs keep their bias even before BN.
    """
    normed = BuildOptions(norm="batch", activation="relu", bias=True)
    plain = BuildOptions(norm="none", activation="none", bias=True)
    same3 = _square(kernel=3, stride=1, padding=1)
    conv1 = make_step(["conv"], (3, 128, 128), same3, 64, normed, first=True, last=False)
    pool1 = make_step(["max_pool"], conv1.out_shape, _square(kernel=2, stride=2), 64, plain, False, False)
    up1 = make_step(["upsample"], pool1.out_shape, _square(stride=2), 64, plain, False, False, merge=Merge(0, "concat"))
    deconv1 = make_step(["conv_transpose"], (128, 128, 128), same3, 64, plain, False, False)
    score1 = make_step(["conv_transpose"], deconv1.out_shape, same3, 21, plain, False, True, merge=Merge(3, "concat"))
    return Design("keras-seed-003", (conv1, pool1, up1, deconv1, score1), normed)


def convlstm_encoder_decoder() -> Design:
    """Seed 000: conv(+LeakyReLU) and ConvLSTM stages down 64→32→16, deconvs back up, convs to one channel."""
    options = BuildOptions(norm="none", activation="leaky_relu", negative_slope=0.2, bias=True)
    plan: list[tuple[str, int, dict[str, int]]] = [
        ("conv", 16, {"kernel": 3, "stride": 1, "padding": 1}),
        ("conv_lstm", 64, {"kernel": 5, "padding": 2}),
        ("conv", 64, {"kernel": 3, "stride": 2, "padding": 1}),
        ("conv_lstm", 96, {"kernel": 5, "padding": 2}),
        ("conv", 96, {"kernel": 3, "stride": 2, "padding": 1}),
        ("conv_lstm", 96, {"kernel": 5, "padding": 2}),
        ("conv_transpose", 96, {"kernel": 4, "stride": 2, "padding": 1}),
        ("conv_lstm", 96, {"kernel": 5, "padding": 2}),
        ("conv_transpose", 96, {"kernel": 4, "stride": 2, "padding": 1}),
        ("conv_lstm", 64, {"kernel": 5, "padding": 2}),
        ("conv", 16, {"kernel": 3, "stride": 1, "padding": 1}),
        ("conv", 1, {"kernel": 1, "stride": 1, "padding": 0}),
    ]
    shape: tuple[int, ...] = (1, 64, 64)
    steps: list[Step] = []
    for op, c_out, fields in plan:
        # The seed names every conv "*_leaky_1": a LeakyReLU follows each, the last one included.
        step = make_step([op], shape, _square(**fields), c_out, options, first=not steps, last=False)
        steps.append(step)
        shape = step.out_shape
    return Design("convlstm-encoder-decoder", tuple(steps), options, sequence=True)


ALL = {
    "dcgan_generator": dcgan_generator,
    "dcgan_discriminator": dcgan_discriminator,
    "keras_seed_003": keras_seed_003,
    "convlstm_encoder_decoder": convlstm_encoder_decoder,
}


# ------------------------------------------------------------------------------------------------
# Random small designs (hypothesis): every kind, composites, per-axis recipes, norms, skips.
# ------------------------------------------------------------------------------------------------

STEP_OPS = (
    ("conv",),
    ("conv_transpose",),
    ("max_pool",),
    ("avg_pool",),
    ("upsample",),
    ("conv", "pixel_shuffle"),
    ("pixel_unshuffle", "conv"),
    ("upsample", "conv"),
    ("conv", "max_pool"),
    ("residual_block",),
)
SMALL = Ranges(kernel=(1, 4), stride=(1, 3), padding=(0, 2), output_padding=(0, 2), dilation=(1, 2), scale=(1, 2))
MAX_SIZE = 40


@st.composite
def random_designs(draw: st.DrawFn) -> Design:
    """A valid 2D design of 1-4 steps drawn through make_step, with optional concat/add skips."""
    options = BuildOptions(
        norm=draw(st.sampled_from(["batch", "instance", "group", "none"])),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        negative_slope=draw(st.sampled_from([0.2, 0.01])),
        output_activation=draw(st.sampled_from(OUTPUT_ACTIVATIONS)),
        bias=draw(st.sampled_from(["auto", True, False])),
        norm_first=draw(st.booleans()),
        norm_last=draw(st.booleans()),
        upsample_mode=draw(st.sampled_from(["nearest", "bilinear"])),
    )
    shape: tuple[int, ...] = (draw(st.integers(1, 4)), draw(st.integers(2, 12)), draw(st.integers(2, 12)))
    in_shape = shape
    n_steps = draw(st.integers(1, 4))
    steps: list[Step] = []
    outputs: list[tuple[int, ...]] = []
    for i in range(n_steps):
        ops = draw(st.sampled_from(STEP_OPS))
        sizes = list(shape[1:])
        axes = []
        for op in ops:
            kind = KINDS[op]
            options_per_axis = [kind.recipes(n, SMALL, 2) for n in sizes]
            if not all(options_per_axis):
                reject()
            if draw(st.booleans()):  # one recipe for both axes
                recipe, _ = draw(st.sampled_from(options_per_axis[0]))
                outs = [kind.out_size(recipe, n, 2) for n in sizes]
                if None in outs:
                    reject()
                axes.append((recipe, recipe))
            else:
                picked = [draw(st.sampled_from(choices)) for choices in options_per_axis]
                axes.append(tuple(r for r, _ in picked))
                outs = [out for _, out in picked]
            sizes = [int(n) for n in outs]  # type: ignore[arg-type]
            if max(sizes) > MAX_SIZE:
                reject()
        c_out = draw(st.integers(1, 6))
        try:
            step = make_step(ops, shape, axes, c_out, options, first=i == 0, last=i == n_steps - 1)
        except InputError:
            reject()
        if any(layer.kind.shape_issue(layer) for layer in step.layers):
            reject()  # torch refuses it (a norm over a single value): Layer.make does not check this yet
        sources = [s for s in range(-1, i) if (in_shape if s == -1 else outputs[s])[1:] == step.out_shape[1:]]
        if sources and draw(st.booleans()):
            merge = Merge(draw(st.sampled_from(sources)), draw(st.sampled_from(MERGE_HOWS)))
            skip = in_shape if merge.source == -1 else outputs[merge.source]
            if merge.how == "concat" or skip == step.out_shape:
                step = replace(step, merge=merge)
                shape = merge.out_shape(step.out_shape, skip)
            else:
                shape = step.out_shape
        else:
            shape = step.out_shape
        steps.append(step)
        outputs.append(shape)
    name = draw(st.text(min_size=1, max_size=12))
    return Design(name, tuple(steps), options)
