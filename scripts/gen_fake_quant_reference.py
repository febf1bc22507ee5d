"""Writes tests/data/fake_quant_reference.json: OpenVINO's own FakeQuantize outputs.

Each case runs one FakeQuantize node on OpenVINO's CPU plugin (f32 inference precision) with
the quantizer ranges that burn-compress derives for that quantizer kind, on fixed pseudo-random
inputs that cover values below, inside and above the range. The Rust tests compare
burn-compress's fake_quantize with these outputs.

Run: .venv/bin/python scripts/gen_fake_quant_reference.py
"""
import json
import pathlib

import numpy as np
import openvino as ov
import openvino.opset13 as ops


def f32(v):
    return np.float32(v)


def symmetric(scale, level_low, level_high):
    """(input_low, range) as burn-compress computes them in f32."""
    scale = np.asarray(scale, dtype=np.float32)
    low = scale * f32(level_low / level_high)
    rng = scale * f32((level_high - level_low) / level_high)
    return low.astype(np.float32), rng.astype(np.float32)


def run(x, low, high, levels):
    param = ops.parameter(list(x.shape), ov.Type.f32)
    fq = ops.fake_quantize(param, low, high, low, high, levels)
    model = ov.Model([fq], [param])
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    return compiled({0: x})[0]


def main():
    rng = np.random.default_rng(20261126)
    cases = []

    def add(name, shape, low, rng_width, levels, kind, scale=None):
        low = np.asarray(low, dtype=np.float32)
        width = np.asarray(rng_width, dtype=np.float32)
        high = (low + width).astype(np.float32)
        span = float(np.max(np.abs(np.concatenate([low.ravel(), high.ravel()])))) * 1.5
        x = rng.uniform(-span, span, size=shape).astype(np.float32)
        out = run(x, low, high, levels)
        cases.append({
            "name": name,
            "kind": kind,
            "shape": list(shape),
            "param_shape": list(low.shape),
            "levels": levels,
            "input": x.ravel().tolist(),
            "input_low": low.ravel().tolist(),
            "range": width.ravel().tolist(),
            "scale": None if scale is None else np.asarray(scale, dtype=np.float32).ravel().tolist(),
            "expected": out.ravel().tolist(),
        })

    # Weights: symmetric signed narrow range, per output channel (axis 0), 8 and 4 bits.
    for bits in (8, 4):
        lh = 2 ** (bits - 1) - 1
        scale = rng.uniform(0.05, 1.0, size=(6, 1, 1, 1)).astype(np.float32)
        low, width = symmetric(scale, -lh, lh)
        add(f"weights_sym_narrow_{bits}bit_per_channel_axis0", (6, 3, 3, 3), low, width, 2 * lh + 1,
            {"mode": "symmetric", "level_low": -lh, "level_high": lh, "axis": 0}, scale)
    # Activations: symmetric unsigned / signed, per tensor, 8 bits and 2 bits.
    for bits in (8, 2):
        levels = 2 ** bits
        low, width = symmetric([[[[2.5]]]], 0, levels - 1)
        add(f"act_sym_unsigned_{bits}bit_per_tensor", (2, 3, 4, 5), low, width, levels,
            {"mode": "symmetric", "level_low": 0, "level_high": levels - 1, "axis": None}, [2.5])
        ll, lh = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        low, width = symmetric([[[[1.7]]]], ll, lh)
        add(f"act_sym_signed_{bits}bit_per_tensor", (2, 3, 4, 5), low, width, levels,
            {"mode": "symmetric", "level_low": ll, "level_high": lh, "axis": None}, [1.7])
    # Signed per-channel on axis 1 and axis 2.
    scale = rng.uniform(0.2, 3.0, size=(1, 4, 1)).astype(np.float32)
    low, width = symmetric(scale, -128, 127)
    add("act_sym_signed_8bit_per_channel_axis1", (3, 4, 7), low, width, 256,
        {"mode": "symmetric", "level_low": -128, "level_high": 127, "axis": 1}, scale)
    scale = rng.uniform(0.2, 3.0, size=(1, 1, 5)).astype(np.float32)
    low, width = symmetric(scale, -128, 127)
    add("act_sym_signed_8bit_per_channel_axis2", (3, 4, 5), low, width, 256,
        {"mode": "symmetric", "level_low": -128, "level_high": 127, "axis": 2}, scale)
    # Asymmetric: zero exactly representable (low = -zero_point * step).
    for bits in (8, 3):
        levels = 2 ** bits
        width = np.float32(3.3)
        step = width / np.float32(levels - 1)
        zero_point = np.round(np.float32(1.2) / step)
        low = np.float32(-zero_point * step)
        add(f"asym_{bits}bit_per_tensor", (4, 25), [[low]], [[width]], levels,
            {"mode": "asymmetric", "level_low": 0, "level_high": levels - 1, "axis": None})
    # Asymmetric per channel (axis 0), 8 bits, narrow range (255 levels).
    widths = rng.uniform(0.5, 2.0, size=(3, 1)).astype(np.float32)
    steps = widths / np.float32(254)
    lows = (-np.round(rng.uniform(0.1, 0.8, size=(3, 1)).astype(np.float32) * widths / steps) * steps).astype(np.float32)
    add("asym_8bit_narrow_per_channel_axis0", (3, 40), lows, widths, 255,
        {"mode": "asymmetric", "level_low": 0, "level_high": 254, "axis": 0})

    out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "fake_quant_reference.json"
    payload = {"generator": "scripts/gen_fake_quant_reference.py", "openvino": ov.__version__, "cases": cases}
    tmp = out.with_suffix(".json.partial")
    tmp.write_text(json.dumps(payload))
    tmp.replace(out)
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
