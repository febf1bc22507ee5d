//! An in-memory OpenVINO IR v11 model: layers with typed ports, edges, and the weights blob.

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
}

impl ElementType {
    /// Name in `element_type` attributes.
    pub fn name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::I8 => "i8",
            ElementType::U8 => "u8",
            ElementType::I64 => "i64",
        }
    }

    /// Name in port `precision` attributes.
    pub fn precision(self) -> &'static str {
        match self {
            ElementType::F32 => "FP32",
            ElementType::I8 => "I8",
            ElementType::U8 => "U8",
            ElementType::I64 => "I64",
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IrModel {
    /// Model name.
    pub name: String,
    /// Layers in topological order.
    pub layers: Vec<Layer>,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Weights blob.
    pub bin: Vec<u8>,
    /// The Convolution / MatMul weights, in the order they were written.
    pub weights: Vec<WeightSummary>,
    /// For each activation `FakeQuantize` layer, the parameter its range came from (empty when
    /// the range was a plain constant).
    pub activation_quantizers: Vec<String>,
    /// Layers whose weight is quantized but whose input is not (they run in floating point).
    pub float_inputs: Vec<FloatInput>,
}

impl IrModel {
    /// An empty model.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
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
        let offset = self.align_bin();
        self.bin.reserve(data.len() * 4);
        for v in data {
            self.bin.extend_from_slice(&v.to_le_bytes());
        }
        self.const_layer(name, ElementType::F32, shape, offset)
    }

    /// Pads the blob so the next constant starts 64-byte aligned; returns that offset.
    fn align_bin(&mut self) -> usize {
        let padded = self.bin.len().next_multiple_of(64);
        self.bin.resize(padded, 0);
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
            ("size".to_string(), (self.bin.len() - offset).to_string()),
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
