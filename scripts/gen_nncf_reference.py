"""Writes tests/data/nncf_fake_quant_cases.json: outputs and gradients of NNCF's own quantize
functions, the reference that burn-compress's FakeQuantizer is tested against.

Needs torch and nncf (not part of CI; the JSON is committed):

    python3 -m venv /tmp/nncf && /tmp/nncf/bin/pip install torch==2.9.1 nncf==3.4.0
    /tmp/nncf/bin/python scripts/gen_nncf_reference.py

Each case calls `nncf.torch.quantization.quantize_functions.symmetric_quantize` or
`asymmetric_quantize` (eps 1e-16) on random inputs on the CPU, backpropagates `sum(y * g)` and
records y, dx and the gradient of every range parameter. Asymmetric cases start from ranges
that are not zero-aligned, so NNCF's TuneRange moves them at every forward.
"""
import json
import pathlib

import torch
from nncf.torch.quantization.quantize_functions import asymmetric_quantize, symmetric_quantize

EPS = 1e-16


def broadcast(values, axis, rank):
    shape = [1] * rank
    if axis is not None:
        shape[axis] = len(values)
    return torch.tensor(values, dtype=torch.float32).reshape(shape).requires_grad_(True)


def case(name, shape, levels, level_low, level_high, axis, params, spread):
    x = (torch.rand(shape) * 2 - 1) * spread
    x.requires_grad_(True)
    g = torch.randn(shape)
    rank = len(shape)
    symmetric = "scale" in params
    if symmetric:
        scale = broadcast(params["scale"], axis, rank)
        y = symmetric_quantize(x, levels, level_low, level_high, scale, EPS)
        leaves = {"scale": scale}
    else:
        low = broadcast(params["input_low"], axis, rank)
        rng = broadcast(params["input_range"], axis, rank)
        y = asymmetric_quantize(x, levels, level_low, level_high, low, rng, EPS)
        leaves = {"input_low": low, "input_range": rng}
    (y * g).sum().backward()
    flat = lambda t: t.detach().reshape(-1).tolist()
    return {
        "name": name,
        "shape": shape,
        "x": flat(x),
        "g": flat(g),
        "levels": levels,
        "level_low": level_low,
        "level_high": level_high,
        "axis": axis,
        "symmetric": symmetric,
        "params": {k: v for k, v in params.items()},
        "y": flat(y),
        "dx": flat(x.grad),
        "grads": {k: flat(v.grad) for k, v in leaves.items()},
    }


def main():
    torch.manual_seed(7)
    cases = [
        case("sym_w8_narrow_per_channel", [6, 2, 3, 3], 255, -127, 127, 0,
             {"scale": [0.4, 0.9, 1.6, 2.2, 2.7, 3.3]}, 3.0),
        case("sym_w4_narrow_per_channel", [6, 2, 3, 3], 15, -7, 7, 0,
             {"scale": [0.6, 1.1, 1.9, 2.4, 3.0, 0.2]}, 3.0),
        case("sym_a8_unsigned", [3, 4, 3, 3], 256, 0, 255, None, {"scale": [2.1]}, 3.0),
        case("sym_a8_signed", [3, 4, 3, 3], 256, -128, 127, None, {"scale": [1.3]}, 2.0),
        case("asym_a8_tuned_needed", [3, 4, 3, 3], 256, 0, 255, None,
             {"input_low": [-0.55], "input_range": [2.9]}, 3.0),
        case("asym_a8_per_channel", [3, 4, 3, 3], 256, 0, 255, 1,
             {"input_low": [-1.2, -0.1, 0.3, -2.5], "input_range": [2.2, 1.4, 2.9, 3.7]}, 3.0),
    ]
    out = pathlib.Path(__file__).resolve().parent.parent / "tests/data/nncf_fake_quant_cases.json"
    out.write_text(json.dumps(cases))
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
