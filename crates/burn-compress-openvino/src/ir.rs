//! An in-memory OpenVINO IR v11 model: layers with typed ports, edges, and the weights blob
//! (held in memory, or streamed to a file as it grows).

use std::fs::File;
use std::io::Write;

use burn_compress_graph::FloatInput;

/// Element types used in the IR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// 32-bit float.
    F32,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 64-bit integer.
    I64,
    /// Boolean (comparison results).
    Boolean,
}

impl ElementType {
    /// Name in `element_type` attributes.
    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::I8 => "i8",
            ElementType::U8 => "u8",
            ElementType::I64 => "i64",
            ElementType::Boolean => "boolean",
        }
    }

    /// Name in port `precision` attributes.
    pub fn precision(self) -> &'static str {
        match self {
            ElementType::F32 => "FP32",
            ElementType::I8 => "I8",
            ElementType::U8 => "U8",
            ElementType::I64 => "I64",
            ElementType::Boolean => "BOOL",
        }
    }
}

/// A port: element type and dimensions (`-1` for a dynamic dimension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Element type.
    pub element: ElementType,
    /// Dimensions.
    pub dims: Vec<i64>,
}

/// One IR layer (an OpenVINO operation).
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Layer id (its index).
    pub id: usize,
    /// Friendly name.
    pub name: String,
    /// Operation type, e.g. `Convolution`.
    pub kind: String,
    /// Opset, e.g. `opset1`.
    pub version: String,
    /// `<data>` attributes, in order.
    pub attrs: Vec<(String, String)>,
    /// Input ports (numbered from 0).
    pub inputs: Vec<Port>,
    /// Output ports (numbered after the inputs).
    pub outputs: Vec<Port>,
    /// Tensor names of output 0 (for Parameters and producers of Results).
    pub output_names: Option<String>,
}

/// Output `port` (0-based among outputs) of layer `layer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRef {
    /// Producer layer id.
    pub layer: usize,
    /// Output index (0-based among the layer's outputs).
    pub output: usize,
}

/// An edge from an output port to an input port (IR port numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Producer layer.
    pub from_layer: usize,
    /// Producer port number.
    pub from_port: usize,
    /// Consumer layer.
    pub to_layer: usize,
    /// Consumer port number.
    pub to_port: usize,
}

/// How one Convolution / MatMul weight was written (provenance kept for reports and checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightSummary {
    /// Parameter path of the weight in the Burn model (`conv1.weight`).
    pub param: String,
    /// Element type of its constant: `I8`/`U8` for quantized weights, `F32` otherwise.
    pub element: ElementType,
    /// Number of elements.
    pub elements: usize,
    /// Elements that are exactly zero (quantized: whose integer equals the zero point).
    pub zeros: usize,
}

impl WeightSummary {
    /// Fraction of elements that are zero.
    pub fn sparsity(&self) -> f64 {
        self.zeros as f64 / self.elements.max(1) as f64
    }
}

/// A whole IR: layers, edges and the `.bin` contents.
#[derive(Debug, Default)]
pub struct IrModel {
    /// Model name.
    pub name: String,
    /// Layers in topological order.
    pub layers: Vec<Layer>,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Weights blob: all of it, or, when it is streamed to a file, the part not written yet.
    pub bin: Vec<u8>,
    /// The file the blob is streamed to, if any.
    sink: Option<BinSink>,
    /// The Convolution / MatMul weights, in the order they were written.
    pub weights: Vec<WeightSummary>,
    /// For each activation `FakeQuantize` layer, the parameter its range came from (empty when
    /// the range was a plain constant).
    pub activation_quantizers: Vec<String>,
    /// Layers whose weight is quantized but whose input is not (they run in floating point).
    pub float_inputs: Vec<FloatInput>,
}

/// A file that receives the blob as it grows.
#[derive(Debug)]
struct BinSink {
    file: File,
    /// Bytes of the blob written to `file` so far.
    written: usize,
    /// The first write error (reported by [`IrModel::finish_bin`]).
    error: Option<std::io::Error>,
}

/// Held bytes beyond which a streamed blob is written out.
const STREAM_CHUNK: usize = 8 << 20;

impl IrModel {
    /// An empty model.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// An empty model whose blob is written to `file` (from its current position) as it grows,
    /// so that the weights are never held whole; call [`finish_bin`](Self::finish_bin) last.
    pub fn streaming_to(name: impl Into<String>, file: File) -> Self {
        Self {
            sink: Some(BinSink {
                file,
                written: 0,
                error: None,
            }),
            ..Self::new(name)
        }
    }

    /// Size of the whole blob in bytes, written out or not.
    pub fn bin_len(&self) -> usize {
        self.sink.as_ref().map_or(0, |s| s.written) + self.bin.len()
    }

    /// Writes the rest of a streamed blob to its file; reports the first write error. Nothing to
    /// do for a blob held in memory.
    pub fn finish_bin(&mut self) -> std::io::Result<()> {
        self.write_out(0);
        match self.sink.as_mut().and_then(|s| s.error.take()) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// Writes the held bytes of a streamed blob out once there are at least `threshold` of them
    /// (the buffer keeps its capacity, so the next constants reuse its memory).
    fn write_out(&mut self, threshold: usize) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.bin.len() < threshold.max(1) {
            return;
        }
        if sink.error.is_none() {
            if let Err(e) = sink.file.write_all(&self.bin) {
                sink.error = Some(e);
            }
        }
        sink.written += self.bin.len();
        self.bin.clear();
    }

    /// The port a [`PortRef`] points at.
    pub fn port(&self, r: PortRef) -> &Port {
        &self.layers[r.layer].outputs[r.output]
    }

    /// Adds a layer fed by `inputs`; returns refs to its outputs.
    pub fn add_layer(
        &mut self,
        kind: &str,
        version: &str,
        name: impl Into<String>,
        attrs: Vec<(String, String)>,
        inputs: &[PortRef],
        outputs: Vec<Port>,
    ) -> Vec<PortRef> {
        let id = self.layers.len();
        let in_ports: Vec<Port> = inputs.iter().map(|r| self.port(*r).clone()).collect();
        for (i, r) in inputs.iter().enumerate() {
            let from_port = self.layers[r.layer].inputs.len() + r.output;
            self.edges.push(Edge {
                from_layer: r.layer,
                from_port,
                to_layer: id,
                to_port: i,
            });
        }
        let n = outputs.len();
        self.layers.push(Layer {
            id,
            name: name.into(),
            kind: kind.to_string(),
            version: version.to_string(),
            attrs,
            inputs: in_ports,
            outputs,
            output_names: None,
        });
        (0..n).map(|output| PortRef { layer: id, output }).collect()
    }

    /// Adds a `Const` layer holding `bytes` (already in `element`'s little-endian layout).
    pub fn add_const(
        &mut self,
        name: impl Into<String>,
        element: ElementType,
        shape: &[usize],
        bytes: &[u8],
    ) -> PortRef {
        let offset = self.align_bin();
        self.bin.extend_from_slice(bytes);
        self.const_layer(name, element, shape, offset)
    }

    /// An f32 constant, written straight into the blob.
    pub fn const_f32(&mut self, name: impl Into<String>, shape: &[usize], data: &[f32]) -> PortRef {
        self.const_f32_with(name, shape, |out| out.copy_from_slice(data))
    }

    /// An f32 constant of `shape` whose row-major values `fill` writes in place in the blob (a
    /// transposition, for one, without a copy of the whole tensor).
    pub fn const_f32_with(
        &mut self,
        name: impl Into<String>,
        shape: &[usize],
        fill: impl FnOnce(&mut [f32]),
    ) -> PortRef {
        let offset = self.align_bin();
        let len = shape.iter().product::<usize>();
        let start = self.bin.len();
        self.bin.resize(start + len * 4, 0);
        let bytes = &mut self.bin[start..];
        // Every constant starts 64-byte aligned in the held bytes (whose allocation is at least
        // 8-byte aligned in practice), so they can be viewed as f32; a copy otherwise.
        match bytemuck::try_cast_slice_mut::<u8, f32>(bytes) {
            Ok(values) => {
                fill(values);
                if cfg!(target_endian = "big") {
                    values
                        .iter_mut()
                        .for_each(|v| *v = f32::from_bits(v.to_bits().swap_bytes()));
                }
            }
            Err(_) => {
                let mut values = vec![0f32; len];
                fill(&mut values);
                for (chunk, v) in bytes.chunks_exact_mut(4).zip(values) {
                    chunk.copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        self.const_layer(name, ElementType::F32, shape, offset)
    }

    /// Pads the blob so the next constant starts 64-byte aligned; returns that offset.
    /// A streamed blob is written out here, so the held bytes always start at a 64-byte
    /// boundary of the blob.
    fn align_bin(&mut self) -> usize {
        let len = self.bin_len();
        let padded = len.next_multiple_of(64);
        self.bin.resize(self.bin.len() + (padded - len), 0);
        self.write_out(STREAM_CHUNK);
        padded
    }

    /// The `Const` layer for the blob bytes from `offset` to the end.
    fn const_layer(
        &mut self,
        name: impl Into<String>,
        element: ElementType,
        shape: &[usize],
        offset: usize,
    ) -> PortRef {
        let attrs = vec![
            ("element_type".to_string(), element.name().to_string()),
            ("shape".to_string(), join(shape.iter())),
            ("offset".to_string(), offset.to_string()),
            ("size".to_string(), (self.bin_len() - offset).to_string()),
        ];
        let dims = shape.iter().map(|&d| d as i64).collect();
        self.add_layer(
            "Const",
            "opset1",
            name,
            attrs,
            &[],
            vec![Port { element, dims }],
        )[0]
    }

    /// A scalar (rank-0) i64 constant: an axis, for one.
    pub fn const_i64_scalar(&mut self, name: impl Into<String>, value: i64) -> PortRef {
        self.add_const(name, ElementType::I64, &[], &value.to_le_bytes())
    }

    /// A 1-D i64 constant.
    pub fn const_i64(&mut self, name: impl Into<String>, data: &[i64]) -> PortRef {
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_const(name, ElementType::I64, &[data.len()], &bytes)
    }

    /// Bytes of the weights blob taken by constants of `element` type.
    pub fn const_bytes(&self, element: ElementType) -> usize {
        self.layers
            .iter()
            .filter(|l| l.kind == "Const" && l.outputs[0].element == element)
            .map(|l| {
                l.attrs
                    .iter()
                    .find(|(k, _)| k == "size")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0)
            })
            .sum()
    }
}

/// `a,b,c` from a list of displayable items.
pub fn join<T: ToString>(items: impl Iterator<Item = T>) -> String {
    items.map(|v| v.to_string()).collect::<Vec<_>>().join(",")
}

/// An attribute pair.
pub fn attr(key: &str, value: impl ToString) -> (String, String) {
    (key.to_string(), value.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek};

    use super::*;

    /// `offset` and `size` of a `Const` layer.
    fn extent(layer: &Layer) -> (usize, usize) {
        let get = |key: &str| {
            let (_, v) = layer.attrs.iter().find(|(k, _)| k == key).unwrap();
            v.parse::<usize>().unwrap()
        };
        (get("offset"), get("size"))
    }

    #[test]
    fn a_streamed_blob_holds_every_constant_at_its_declared_offset() {
        // Constants larger than the streaming chunk, a transposed one, and small ones between.
        let big: Vec<f32> = (0..3_000_000).map(|i| i as f32 * 0.5).collect();
        let small = [1.0f32, -2.0, 3.5];
        let mut file = tempfile::tempfile().unwrap();
        let mut ir = IrModel::streaming_to("m", file.try_clone().unwrap());
        ir.const_f32("a", &[3_000_000], &big);
        ir.const_i64("b", &[7, -1]);
        ir.const_f32_with("c", &[1000, 3000], |out| {
            for (k, v) in out.iter_mut().enumerate() {
                *v = -(k as f32);
            }
        });
        ir.const_f32("d", &[3], &small);
        ir.finish_bin().unwrap();
        assert!(ir.bin.is_empty(), "everything was written out");
        let mut blob = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut blob).unwrap();
        assert_eq!(blob.len(), ir.bin_len());
        let floats = |layer: &Layer| -> Vec<f32> {
            let (offset, size) = extent(layer);
            assert_eq!(offset % 64, 0, "{} starts 64-byte aligned", layer.name);
            blob[offset..offset + size]
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect()
        };
        assert_eq!(floats(&ir.layers[0]), big);
        let (offset, size) = extent(&ir.layers[1]);
        assert_eq!(size, 16);
        assert_eq!(blob[offset..offset + 8], 7i64.to_le_bytes());
        let c = floats(&ir.layers[2]);
        assert_eq!(
            (c.len(), c[0], c[2_999_999]),
            (3_000_000, 0.0, -2_999_999.0)
        );
        assert_eq!(floats(&ir.layers[3]), small);
    }
}
