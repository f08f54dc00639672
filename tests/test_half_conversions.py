"""The fused CPU kernels convert float16/bfloat16 with their own vectorisable code: it must
round exactly like torch (to nearest even), over every 16-bit pattern."""

import pytest
import torch
from fastot_testing import fused_available

pytestmark = pytest.mark.skipif(not fused_available(), reason="needs the C++ extension")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("coef", [1.0, 3.0, 0.37, 1e-3, 7.5e4])
def test_every_bit_pattern_rounds_like_torch(dtype, coef):
    bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    grad = bits.view(dtype).reshape(2, -1)  # every value: zeros, subnormals, normals, inf, NaN
    batch = grad.shape[0]
    # _r1_penalty_backward computes (weight / B) * grad_out * grad in float, then stores it.
    out = torch.ops.fastot._r1_penalty_backward(torch.ones((), dtype=dtype), grad, coef * batch)
    expected = (grad.float() * torch.tensor(coef * batch / batch, dtype=torch.float32)).to(dtype)
    torch.testing.assert_close(out, expected, atol=0, rtol=0, equal_nan=True)
    # Signed zeros and NaN-ness match bit for bit where the values are not NaN.
    finite = ~expected.isnan()
    assert torch.equal(out.view(torch.int16)[finite], expected.view(torch.int16)[finite])
