"""Bad input raises the same documented error from every backend, before any kernel runs."""

import importlib

import pytest
import torch
from fastot_testing import per_op

import fastot
from fastot.ops import available

BACKENDS = available("cpu")


def _calls(x, y, ys):
    return {name: call(x, y, ys) for name, call in per_op("error_call").items()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.int64, torch.bool])
def test_integer_and_bool_dtypes_rejected(backend, dtype):
    x = torch.ones(3, 4, dtype=dtype)
    for _name, call in _calls(x, x, torch.ones(3, 2, 4, dtype=dtype)).items():
        with pytest.raises(TypeError, match="must have a floating dtype"):
            call(backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_dtypes_rejected(backend):
    x, y = torch.ones(3, 4), torch.ones(3, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match="x and y must have the same dtype"):
        fastot.quadratic_cost(x, y, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_different_devices_rejected(backend):
    x, y = torch.ones(3, 4), torch.ones(3, 4, device="meta")
    with pytest.raises(ValueError, match="must be on the same device"):
        fastot.quadratic_cost(x, y, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mismatched_shapes_name_the_shapes(backend):
    with pytest.raises(ValueError, match=r"same shape, got \[3, 4\] and \[2, 4\]"):
        fastot.quadratic_cost(torch.ones(3, 4), torch.ones(2, 4), backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda b: fastot.quadratic_cost(torch.ones(2, 3), torch.ones(2, 3), -1.0, backend=b),
            "scale must be >= 0",
        ),
        (lambda b: fastot.psi_star(torch.ones(2), "kl", 0.0, backend=b), "alpha must be > 0"),
        (lambda b: fastot.r1_penalty(torch.ones(2, 3), float("nan"), backend=b), "weight must be finite"),
        (
            lambda b: fastot.weak_quadratic_cost(torch.ones(2, 3), torch.ones(2, 2, 3), "0.5", backend=b),
            "gamma must be a number",
        ),
        (
            lambda b: fastot.semi_dual_loss(
                torch.ones(2), torch.ones(2), torch.ones(2), "kl", "tv", backend=b
            ),
            "psi_target must be one of",
        ),
    ],
)
def test_bad_scalars_name_the_argument(backend, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(backend)


def test_non_tensor_rejected():
    with pytest.raises(TypeError, match=r"x must be a torch\.Tensor, got list"):
        fastot.quadratic_cost([1.0, 2.0], torch.ones(2))


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of auto, eager, cpp, cuda, triton; got 'gpu'"):
        fastot.quadratic_cost(torch.ones(2, 3), torch.ones(2, 3), backend="gpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        with fastot.use_backend("fast"):
            pass


def test_unavailable_backend_says_what_is_missing():
    with pytest.raises(RuntimeError, match="backend 'cuda' is not available for cpu tensors"):
        fastot.quadratic_cost(torch.ones(2, 3), torch.ones(2, 3), backend="cuda")


def test_env_var_backend(monkeypatch):
    monkeypatch.setenv("FASTOT_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="FASTOT_BACKEND must be one of"):
        fastot.quadratic_cost(torch.ones(2, 3), torch.ones(2, 3))


def test_use_backend_context_and_argument_precedence(monkeypatch):
    calls = []
    module = importlib.import_module("fastot.ops.quadratic_cost")
    real = module.reference
    monkeypatch.setattr(module, "reference", lambda *a: calls.append(1) or real(*a))
    x = torch.ones(2, 3)
    with fastot.use_backend("eager"):
        fastot.quadratic_cost(x, x)
        assert calls == [1]
        if "cpp" in BACKENDS:
            fastot.quadratic_cost(x, x, backend="cpp")
            assert calls == [1]
    fastot.quadratic_cost(x, x)
    assert calls == ([1] if "cpp" in BACKENDS else [1, 1])


def test_direct_op_calls_are_checked_in_cpp_too():
    # Bypassing the Python layer must still give an error, never a crash.
    if "cpp" not in BACKENDS:
        pytest.skip("C++ extension not loaded")
    ops = torch.ops.fastot
    with pytest.raises(ValueError, match="same shape"):
        ops.quadratic_cost(torch.ones(3, 4), torch.ones(3, 5), 1.0)
    with pytest.raises(ValueError, match="Z >= 2"):
        ops.energy_kernel_cost(torch.ones(3, 4), torch.ones(3, 1, 4), 0.5, 1.0)
    with pytest.raises(ValueError, match="norms must have shape"):
        ops._energy_kernel_cost_backward(
            torch.ones(3), torch.ones(3, 4), torch.ones(3, 2, 4), torch.ones(3, 2), 0.5, 1.0
        )
    with pytest.raises(ValueError, match="psi_source must be one of"):
        ops.semi_dual_loss(torch.ones(2), torch.ones(2), torch.ones(2), "nope", "kl", 1.0)
    with pytest.raises(TypeError, match="floating dtype"):
        ops.r1_penalty(torch.ones(2, 3, dtype=torch.int32), 1.0)
    with pytest.raises(ValueError, match="must have shape \\[B, d\\]"):
        ops.quadratic_cost(torch.ones(3), torch.ones(3), 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_and_inf_inputs_propagate(backend):
    x = torch.randn(3, 4)
    x[1, 1] = float("nan")
    x[2, 0] = float("inf")
    y = torch.randn(3, 4)
    ys = torch.randn(3, 2, 4)
    outs = {name: call(backend) for name, call in _calls(x, y, ys).items()}
    for name in ("quadratic_cost", "weak_quadratic_cost", "energy_kernel_cost"):
        assert outs[name][0].isfinite() and outs[name][1].isnan(), name
    assert outs["r1_penalty"].isnan()
    assert outs["psi_star"][1, 1].isnan() and outs["psi_star"][2, 0].isposinf()
    assert outs["semi_dual_loss"].isnan()


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_inputs(backend):
    assert fastot.psi_star(torch.empty(0), "kl", backend=backend).shape == (0,)
    assert fastot.quadratic_cost(torch.empty(0, 5), torch.empty(0, 5), backend=backend).shape == (0,)
    with pytest.raises(ValueError, match="grad is an empty batch"):
        fastot.r1_penalty(torch.empty(0, 5), 1.0, backend=backend)
