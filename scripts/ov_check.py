#!/usr/bin/env python3
"""Independent checks of an exported OpenVINO IR with OpenVINO's Python API.

Prints one JSON object on stdout.

  ov_check.py runtime --xml model.xml --shape 1,1,28,28
      Compiles for CPU with default settings (INT8 where the IR allows it), runs one inference
      on zeros, and lists the runtime model's layers: name, layerType, runtimePrecision,
      primitiveType, originalLayersNames.

  ov_check.py io --xml model.xml --shape 1,1,28,28
      Reads the IR and prints the names of its inputs and outputs.

  ov_check.py infer --xml model.xml --input x.f32 --shape 2,1,28,28 --output y.f32 [--precision f32]
      Runs the IR on raw little-endian f32 input and writes the first output as raw f32;
      prints its shape.
"""
import argparse
import json
import sys

import numpy as np
import openvino as ov


def compile_model(core, xml, shape, precision):
    model = core.read_model(xml)
    if shape is not None:
        model.reshape({model.inputs[0]: ov.PartialShape(shape)})
    config = {}
    if precision == "f32":
        config["INFERENCE_PRECISION_HINT"] = "f32"
        # Exact f32: no dynamic quantization of the activations of integer-weight layers (on by
        # default on CPUs with VNNI or AMX).
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = 0
    return core.compile_model(model, "CPU", config)


def parse_shape(text):
    return [int(v) for v in text.split(",")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["runtime", "infer", "io"])
    parser.add_argument("--xml", required=True)
    parser.add_argument("--shape", required=True)
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--precision", choices=["f32", "default"], default="default")
    args = parser.parse_args()
    shape = parse_shape(args.shape)
    core = ov.Core()

    if args.mode == "io":
        model = core.read_model(args.xml)
        names = lambda ports: [sorted(p.get_names()) for p in ports]
        print(json.dumps({"inputs": names(model.inputs), "outputs": names(model.outputs)}))
    elif args.mode == "runtime":
        compiled = compile_model(core, args.xml, shape, args.precision)
        compiled.create_infer_request().infer({0: np.zeros(shape, dtype=np.float32)})
        layers = []
        for op in compiled.get_runtime_model().get_ordered_ops():
            rt = op.get_rt_info()
            entry = {"name": op.get_friendly_name()}
            for key in ("layerType", "runtimePrecision", "primitiveType", "originalLayersNames"):
                entry[key] = str(rt[key].astype(str)) if key in rt else ""
            layers.append(entry)
        print(json.dumps({"openvino": ov.__version__, "layers": layers}))
    else:
        if not args.input or not args.output:
            sys.exit("infer needs --input and --output")
        x = np.fromfile(args.input, dtype="<f4").reshape(shape)
        compiled = compile_model(core, args.xml, None, args.precision)
        result = compiled.create_infer_request().infer({0: x})
        y = np.asarray(result[compiled.outputs[0]], dtype="<f4")
        y.tofile(args.output)
        print(json.dumps({"openvino": ov.__version__, "shape": list(y.shape)}))


if __name__ == "__main__":
    main()
