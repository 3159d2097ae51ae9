import math

import pytest
import torch

from ablate.ops import (BACKENDS, available_backends, resolve_backend, scan_macs, selective_scan,
                        set_default_backend)
from ablate.ops.scan_ref import selective_scan_ref


def rel_err(got, want):
    return ((got - want).norm() / want.norm().clamp_min(1e-30)).item()


def make_inputs(batch, dim, length, d_state, *, groups=0, big=False, seed=0, device="cpu"):
    """delta up to 20 and A down to -16 with ``big``: decays of exp(-320) per step, the overflow regime."""
    g = torch.Generator().manual_seed(seed)
    bc_shape = (batch, groups, d_state, length) if groups else (batch, d_state, length)
    tensors = dict(
        u=torch.randn(batch, dim, length, generator=g),
        delta=torch.rand(batch, dim, length, generator=g) * (20.0 if big else 1.0),
        A=-torch.rand(dim, d_state, generator=g) * (16.0 if big else 1.0) - 1e-3,
        B=torch.randn(bc_shape, generator=g), C=torch.randn(bc_shape, generator=g),
        D=torch.randn(dim, generator=g), z=torch.randn(batch, dim, length, generator=g),
        delta_bias=torch.randn(dim, generator=g),
    )
    return {k: v.to(device).requires_grad_() for k, v in tensors.items()}


def run(backend, inputs, use_z, use_D, use_bias, softplus=True, last_in_loss=True):
    kwargs = dict(inputs)
    for flag, key in ((use_z, "z"), (use_D, "D"), (use_bias, "delta_bias")):
        if not flag:
            kwargs.pop(key)
    y, last = selective_scan(**kwargs, delta_softplus=softplus, return_last_state=True, backend=backend)
    weights = torch.linspace(-1, 1, y.numel(), device=y.device).view_as(y)   # an uneven loss: every output matters
    loss = (y * weights).sum() + (last.sum() if last_in_loss else 0)
    grads = torch.autograd.grad(loss, [v for k, v in inputs.items() if k in kwargs])
    return y, last, grads


FAST_BACKENDS = [b for b in available_backends() if b != "ref"]


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("length", [1, 49, 196, 1024])
@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("use_z, use_D, use_bias", [(True, True, True), (False, False, False), (True, False, True)])
def test_backend_matches_ref(backend, length, big, use_z, use_D, use_bias):
    batch, dim = (2, 8) if length < 1024 else (1, 4)
    inputs = make_inputs(batch, dim, length, 4, big=big, seed=length)
    y0, last0, g0 = run("ref", inputs, use_z, use_D, use_bias)
    y1, last1, g1 = run(backend, inputs, use_z, use_D, use_bias)
    for got, want in [(y1, y0), (last1, last0), *zip(g1, g0)]:
        assert torch.isfinite(got).all()
        assert rel_err(got, want) < 1e-4


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_grouped_B_C_and_no_softplus(backend):
    inputs = make_inputs(2, 12, 30, 3, groups=3, seed=7)
    with torch.no_grad():
        inputs["delta"].abs_()                            # without softplus delta must already be positive
    y0, last0, g0 = run("ref", inputs, True, True, False, softplus=False)
    y1, last1, g1 = run(backend, inputs, True, True, False, softplus=False)
    for got, want in [(y1, y0), (last1, last0), *zip(g1, g0)]:
        assert rel_err(got, want) < 1e-4


@pytest.mark.parametrize("backend", ["ref", "chunked"])
def test_bad_B_C_layouts_are_named(backend):
    inputs = {k: v.detach() for k, v in make_inputs(1, 12, 5, 3, groups=5).items()}
    with pytest.raises(ValueError, match="B/C have 5 groups, which does not divide the 12 channels of u"):
        selective_scan(**inputs, backend=backend)
    inputs["B"] = inputs["C"] = torch.randn(1, 1, 1, 3, 5)
    with pytest.raises(ValueError, match="B and C must be \\(batch, N, L\\) or \\(batch, G, N, L\\); got shape"):
        selective_scan(**inputs, backend=backend)


def test_chunked_scan_names_B_and_C_with_different_groups():
    inputs = {k: v.detach() for k, v in make_inputs(1, 12, 5, 3, groups=3).items()}
    inputs["C"] = torch.randn(1, 3, 5)
    with pytest.raises(ValueError, match="B has 3 groups and C has 1; the chunked scan needs the same"):
        selective_scan(**inputs, backend="chunked")


def test_ref_matches_the_recurrence_by_hand():
    """Two steps, one channel, one state, written out: h1 = d1*b1*u1, h2 = exp(d2*a)*h1 + d2*b2*u2."""
    u, delta = torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[0.5, 0.25]]])
    A, B, C = torch.tensor([[-2.0]]), torch.tensor([[[3.0, -1.0]]]), torch.tensor([[[2.0, 4.0]]])
    D = torch.tensor([0.5])
    h1 = 0.5 * 3.0 * 1.0
    h2 = math.exp(0.25 * -2.0) * h1 + 0.25 * -1.0 * 2.0
    y = selective_scan_ref(u, delta, A, B, C, D)
    assert torch.allclose(y, torch.tensor([[[2.0 * h1 + 0.5, 4.0 * h2 + 1.0]]]))


def test_large_decay_has_no_overflow_or_nan():
    inputs = make_inputs(1, 4, 512, 8, big=True)
    with torch.no_grad():
        inputs["delta"].fill_(20.0)
        inputs["A"].fill_(-16.0)
    y, last, grads = run("chunked", inputs, True, True, False, softplus=False)
    assert all(torch.isfinite(t).all() for t in (y, last, *grads))


def test_output_keeps_input_dtype():
    inputs = {k: v.detach().to(torch.bfloat16) for k, v in make_inputs(1, 4, 16, 4).items()}
    assert selective_scan(**inputs, backend="chunked").dtype == torch.bfloat16


def test_auto_picks_chunked_on_cpu_and_default_can_be_forced():
    assert resolve_backend("auto", on_cuda=False) == "chunked"
    set_default_backend("ref")
    try:
        assert resolve_backend("auto", on_cuda=False) == "ref"
    finally:
        set_default_backend("auto")


def test_unknown_backend_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown scan backend 'fast'; valid: auto, ref, chunked, cuda"):
        selective_scan(*[torch.zeros(1)] * 5, backend="fast")


def test_cuda_backend_refuses_cpu_tensors():
    inputs = {k: v.detach() for k, v in make_inputs(1, 4, 8, 2).items()}
    with pytest.raises(RuntimeError, match="backend 'cuda' needs"):
        selective_scan(**inputs, backend="cuda")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
def test_gradients_when_the_loss_leaves_the_last_state_out(backend):
    """The model's case: the chunked Function then gets no gradient for the last state (None, not zeros)."""
    inputs = make_inputs(2, 8, 49, 4, seed=3)
    y0, last0, g0 = run("ref", inputs, True, True, True, last_in_loss=False)
    y1, last1, g1 = run(backend, inputs, True, True, True, last_in_loss=False)
    for got, want in [(y1, y0), (last1, last0), *zip(g1, g0)]:
        assert rel_err(got, want) < 1e-4


def test_scan_macs_convention():
    assert scan_macs(2, 8, 10, 4) == 2 * 8 * 10 * 4 * 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", [b for b in ("chunked", "cuda") if b in available_backends(on_cuda=True)])
@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("groups", [0, 2])
def test_cuda_tensors_match_ref(backend, big, groups):
    # mamba_ssm's kernel has no gradient for the last state (see the next test): the loss leaves it out.
    inputs = make_inputs(2, 16, 196, 8, big=big, groups=groups, device="cuda")
    y0, last0, g0 = run("ref", inputs, True, True, True, last_in_loss=False)
    y1, last1, g1 = run(backend, inputs, True, True, True, last_in_loss=False)
    for got, want in [(y1, y0), (last1, last0), *zip(g1, g0)]:
        assert rel_err(got, want) < 1e-4


@pytest.mark.skipif("cuda" not in available_backends(on_cuda=torch.cuda.is_available()),
                    reason="needs mamba_ssm and a CUDA GPU")
def test_cuda_backend_refuses_a_gradient_through_the_last_state():
    inputs = make_inputs(2, 16, 49, 8, device="cuda")
    with pytest.raises(RuntimeError, match="does not backpropagate through the last state"):
        run("cuda", inputs, True, True, True, last_in_loss=True)


@pytest.mark.parametrize("backend", ["ref"] + FAST_BACKENDS)
def test_scan_under_bf16_autocast_runs_in_fp32(backend):
    # Under autocast the mixer's projections hand the scan bf16 B, C and delta; training must get through
    # backward, and the scan itself must not drop to bf16.
    inputs = make_inputs(2, 8, 49, 4, seed=3)
    low = {k: v.detach().bfloat16().float().requires_grad_() if k in ("B", "C", "delta") else v
           for k, v in inputs.items()}
    y_fp32, _, g_fp32 = run("ref", low, True, True, True)
    bf16 = {k: v.detach().bfloat16().requires_grad_() if k in ("B", "C", "delta") else v
            for k, v in low.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y1, last1, g1 = run(backend, bf16, True, True, True)
    assert y1.dtype == torch.float32 and rel_err(y1, y_fp32) < 1e-6
    for got, want in zip(g1, g_fp32):
        # gradients of the bf16 inputs are rounded to bf16 (2**-8); the fp32 inputs' are not rounded at all
        assert rel_err(got.float(), want) < (1e-2 if got.dtype == torch.bfloat16 else 1e-5)


def test_every_backend_is_listed():
    assert set(BACKENDS) == {"ref", "chunked", "cuda"}


@pytest.mark.parametrize("groups", [0, 2])
def test_the_chunked_scan_under_vmap_equals_one_scan_per_stacked_model(groups):
    """The fused seeds' trainer calls the scan under vmap, whose rule folds the stacked models into the scan's
    groups: each model's outputs and gradients must be its own scan's."""
    stacks = [make_inputs(2, 8, 49, 4, groups=groups, seed=seed) for seed in range(3)]
    names = list(stacks[0])
    stacked = {name: torch.stack([s[name].detach() for s in stacks]).requires_grad_() for name in names}

    def scan(u, delta, A, B, C, D, z, delta_bias):
        return selective_scan(u, delta, A, B, C, D=D, z=z, delta_bias=delta_bias, delta_softplus=True,
                              return_last_state=True, backend="chunked")
    y, last = torch.func.vmap(scan)(*(stacked[name] for name in names))     # (3, b, d, L), (3, b, d, n)
    weights = torch.linspace(-1, 1, y[0].numel()).view_as(y[0])
    ((y * weights).sum() + last.sum()).backward()
    for index, inputs in enumerate(stacks):
        y1, last1, grads = run("chunked", inputs, True, True, True)
        assert rel_err(y[index], y1) < 1e-6 and rel_err(last[index], last1) < 1e-6
        for name, grad in zip(names, grads):
            assert rel_err(stacked[name].grad[index], grad) < 1e-5, name
