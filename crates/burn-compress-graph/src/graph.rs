//! The dataflow graph: named, typed values and single-output operation nodes in topological order.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::error::{GraphError, Result};
use crate::tensor::ConstTensor;

/// Index of a value in [`Graph::values`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// Convolution attributes (1-D or 2-D; vectors have one entry per spatial axis).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvAttrs {
    /// Stride per spatial axis.
    pub stride: Vec<usize>,
    /// Padding before each spatial axis.
    pub pads_begin: Vec<usize>,
    /// Padding after each spatial axis.
    pub pads_end: Vec<usize>,
    /// Dilation per spatial axis.
    pub dilation: Vec<usize>,
    /// Number of groups (1: dense, channels: depthwise).
    pub groups: usize,
}

/// The element-wise functions of [`Op::Math`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MathFn {
    /// Cosine.
    Cos,
    /// Sine.
    Sin,
    /// Tangent.
    Tan,
    /// Hyperbolic cosine.
    Cosh,
    /// Hyperbolic sine.
    Sinh,
    /// Inverse cosine.
    Acos,
    /// Inverse sine.
    Asin,
    /// Inverse tangent.
    Atan,
    /// Inverse hyperbolic cosine.
    Acosh,
    /// Inverse hyperbolic sine.
    Asinh,
    /// Inverse hyperbolic tangent.
    Atanh,
    /// Rounding down.
    Floor,
    /// Rounding up.
    Ceil,
}

impl MathFn {
    /// The function of one value (for constant folding).
    pub fn of(self, v: f32) -> f32 {
        match self {
            MathFn::Cos => v.cos(),
            MathFn::Sin => v.sin(),
            MathFn::Tan => v.tan(),
            MathFn::Cosh => v.cosh(),
            MathFn::Sinh => v.sinh(),
            MathFn::Acos => v.acos(),
            MathFn::Asin => v.asin(),
            MathFn::Atan => v.atan(),
            MathFn::Acosh => v.acosh(),
            MathFn::Asinh => v.asinh(),
            MathFn::Atanh => v.atanh(),
            MathFn::Floor => v.floor(),
            MathFn::Ceil => v.ceil(),
        }
    }
}

/// What [`Op::Reduce`] computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Mean.
    Mean,
    /// Sum.
    Sum,
    /// Product.
    Prod,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Whether every boolean holds.
    All,
    /// Whether any boolean holds.
    Any,
}

/// How [`Op::Compare`] compares `a` with `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `a > b`.
    Greater,
    /// `a >= b`.
    GreaterEqual,
    /// `a < b`.
    Less,
    /// `a <= b`.
    LessEqual,
    /// `a == b`.
    Equal,
    /// `a != b`.
    NotEqual,
}

impl Comparison {
    /// Whether `a` compares with `b` this way.
    pub fn holds(self, a: f32, b: f32) -> bool {
        match self {
            Comparison::Greater => a > b,
            Comparison::GreaterEqual => a >= b,
            Comparison::Less => a < b,
            Comparison::LessEqual => a <= b,
            Comparison::Equal => a == b,
            Comparison::NotEqual => a != b,
        }
    }
}

/// Pooling attributes (2-D).
#[derive(Debug, Clone, PartialEq)]
pub struct PoolAttrs {
    /// Window size.
    pub kernel: Vec<usize>,
    /// Stride.
    pub stride: Vec<usize>,
    /// Symmetric padding per spatial axis.
    pub padding: Vec<usize>,
    /// Dilation (max pooling only; 1 for average pooling).
    pub dilation: Vec<usize>,
    /// Output size rounds up instead of down.
    pub ceil_mode: bool,
}

/// One slice range along an axis: `start..end` by `step` (all non-negative, resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceRange {
    /// First index.
    pub start: usize,
    /// One past the last index.
    pub end: usize,
    /// Step (>= 1).
    pub step: usize,
}

/// What [`Op::Pad`] fills the padding with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PadMode {
    /// A constant.
    Constant(f64),
    /// The mirror image, edge excluded.
    Reflect,
    /// The edge value repeated.
    Edge,
}

/// How [`Op::Interpolate`] samples (Burn's modes; the source index of `Nearest` is
/// `floor(o * in / out)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterpolateMode {
    /// Nearest neighbour.
    Nearest,
    /// Bilinear.
    Bilinear,
    /// Bicubic (Keys, a = -0.75).
    Bicubic,
    /// Nearest neighbour at source index `min(floor((o + 0.5) * in / out), in - 1)` (PyTorch's
    /// `nearest-exact`).
    NearestExact,
    /// Lanczos, `a = 3`, taps that fall outside the input skipped and the rest renormalised
    /// (Burn's definition; separable, one linear map per axis).
    Lanczos3,
}

/// The operations the graph models. Inputs are listed per variant; all ops have one output.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// `[x, weight, bias?]`; weight `[out, in/groups, k..]`.
    Conv(ConvAttrs),
    /// `[x, weight, bias?]`, transposed convolution; weight `[in, out/groups, k..]`, the
    /// padding is cropped from the output.
    ConvTranspose {
        /// Stride, padding, dilation and groups.
        conv: ConvAttrs,
        /// Added to the end of each output spatial axis.
        output_padding: Vec<usize>,
    },
    /// `[x, offset, weight, mask?]`, deformable convolution (torchvision's and Burn's
    /// `deform_conv2d`; no bias: a bias follows as an `Add`).
    DeformConv {
        /// Stride, padding, dilation and weight groups.
        conv: ConvAttrs,
        /// Groups of input channels sharing one set of offsets.
        offset_groups: usize,
    },
    /// `[a, b]`, numpy matmul semantics (batch dimensions broadcast).
    MatMul,
    /// `[a, b]`, broadcasting.
    Add,
    /// `[a, b]`, broadcasting.
    Sub,
    /// `[a, b]`, broadcasting.
    Mul,
    /// `[a, b]`, broadcasting.
    Div,
    /// `[x, gamma, beta, mean, variance]` over axis 1.
    BatchNorm {
        /// Added to the variance.
        epsilon: f64,
    },
    /// `[x, gamma, beta?]` over the last axis.
    LayerNorm {
        /// Added to the variance.
        epsilon: f64,
    },
    /// `[x]`.
    Relu,
    /// `[x]`.
    LeakyRelu {
        /// Slope for negative inputs.
        slope: f64,
    },
    /// `[x, slope]`: `x` where positive, else `slope * x` (slope broadcast like `Mul`).
    PRelu,
    /// `[x]`: `clamp(alpha * x + beta, 0, 1)`.
    HardSigmoid {
        /// Slope.
        alpha: f64,
        /// Offset.
        beta: f64,
    },
    /// `[x]`, erf-based GELU.
    Gelu,
    /// `[x]`.
    Sigmoid,
    /// `[x]`.
    Tanh,
    /// `[x]`.
    Exp,
    /// `[x]`.
    Sqrt,
    /// `[x]`.
    Erf,
    /// `[x]`.
    Neg,
    /// `[x]`.
    Abs,
    /// `[x]`, half to even.
    Round,
    /// `[x]`, natural logarithm.
    Log,
    /// `[x]`: -1, 0 or 1.
    Sign,
    /// `[x]`, a function of each element with one OpenVINO operation of its own.
    Math(MathFn),
    /// `[x]`: `log(1 + exp(x))`, computed without overflow.
    SoftPlus,
    /// `[x, exponent]`, broadcasting.
    Power,
    /// `[a, b]`: the remainder of `a / b` with the sign of `b` (Burn's and Python's), broadcasting.
    FloorMod,
    /// `[x]`: whether each value is NaN (boolean).
    IsNan,
    /// `[x]`: whether each value is infinite (boolean).
    IsInf,
    /// `[a, b]`, broadcasting; the output is boolean.
    Compare(Comparison),
    /// `[condition, then, else]`: `then` where the boolean `condition` holds, else `else`
    /// (broadcasting; Burn's `mask_where` / `mask_fill`).
    Select,
    /// `[x]` converted to the output's element kind (a float from an integer or a boolean, an
    /// integer from a boolean).
    Convert,
    /// `[x]`, boolean negation.
    Not,
    /// `[a, b]`, boolean and, broadcasting.
    And,
    /// `[a, b]`, boolean or, broadcasting.
    Or,
    /// `[x]` broadcast to the output's shape (which may follow the batch).
    Expand,
    /// `[x]` repeated `repeats[axis]` times along each axis.
    Tile {
        /// Repetitions per axis.
        repeats: Vec<usize>,
    },
    /// `[x]`.
    Softmax {
        /// Normalised axis.
        axis: usize,
    },
    /// `[x]`.
    Clamp {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `[x]`.
    MaxPool(PoolAttrs),
    /// `[x]`.
    AvgPool {
        /// Window.
        pool: PoolAttrs,
        /// Padded zeros count in the divisor.
        count_include_pad: bool,
    },
    /// `[x]`, PyTorch/Burn adaptive average pooling over the spatial axes (all after axis 1).
    AdaptiveAvgPool {
        /// Output spatial size.
        output_size: Vec<usize>,
    },
    /// `[x]` reduced over `axes`, dimensions kept.
    Reduce {
        /// The reduction.
        how: Reduction,
        /// Reduced axes.
        axes: Vec<usize>,
    },
    /// `[x]`: the integer index of the first largest (or smallest) value along `axis`, the axis
    /// kept with length one.
    ArgExtreme {
        /// Searched axis.
        axis: usize,
        /// Largest (argmax) or smallest (argmin).
        largest: bool,
    },
    /// `[x]`, running sum along `axis`.
    CumSum {
        /// Summed axis.
        axis: usize,
    },
    /// `[data, indices]`: `data` read along `axis` at the integer `indices` (of the output's
    /// shape; Burn's `gather`).
    GatherElements {
        /// Indexed axis.
        axis: usize,
    },
    /// `[x]`, padded before and after each axis.
    Pad {
        /// `(before, after)` per axis.
        pads: Vec<(usize, usize)>,
        /// What the padding holds.
        mode: PadMode,
    },
    /// `[x]`, resized over the last two axes.
    Interpolate {
        /// Sampling.
        mode: InterpolateMode,
        /// Bilinear and bicubic: corner pixels' centres align (else half-pixel).
        align_corners: bool,
        /// Output size of the last two axes.
        output_size: Vec<usize>,
    },
    /// `[x]`; the target is the output value's shape.
    Reshape,
    /// `[x]`; output axis `i` is input axis `perm[i]`.
    Transpose {
        /// Permutation.
        perm: Vec<usize>,
    },
    /// `[x0, x1, ..]`.
    Concat {
        /// Concatenation axis.
        axis: usize,
    },
    /// `[data, indices]`: the slices of `data` along `axis` that the integer `indices` name
    /// (Burn's `embedding`: rows of the weight); output `indices.shape ++ data.shape[axis + 1..]`.
    Gather {
        /// Axis of `data` the indices select along.
        axis: usize,
    },
    /// `[x]`, one range per leading axis (missing trailing axes are whole).
    Slice {
        /// Ranges.
        ranges: Vec<SliceRange>,
    },
    /// `[x]` with the order of its elements reversed along each of `axes`.
    Flip {
        /// Reversed axes.
        axes: Vec<usize>,
    },
    /// `[x, update]`: `x` with the slice `ranges` (as in [`Op::Slice`]) replaced by `update`.
    SliceAssign {
        /// Ranges.
        ranges: Vec<SliceRange>,
    },
    /// `[]`: a tensor of the output's shape filled with `value` (its dimensions may follow the
    /// batch: Burn's `zeros`, `ones`, `full`, and `empty` filled with zeros).
    Full {
        /// Fill value.
        value: f64,
    },
    /// `[x, input_low, input_high, output_low, output_high]`, OpenVINO semantics.
    FakeQuantize {
        /// Number of quantization levels.
        levels: u32,
    },
    /// An operation the graph does not model; passes report it with its module path.
    Unsupported {
        /// Burn's name of the operation.
        name: String,
    },
}

impl Op {
    /// A short name for messages and layer names.
    pub fn name(&self) -> String {
        match self {
            Op::Unsupported { name } => name.clone(),
            other => {
                let s = format!("{other:?}");
                s.split(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap_or("Op")
                    .to_string()
            }
        }
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// A runtime input of the graph (index in [`Graph::inputs`] order).
    Input,
    /// A constant (parameter, buffer, scalar or folded result).
    Constant(ConstTensor),
    /// The output of node `index` in [`Graph::nodes`].
    Node(usize),
}

/// A tensor flowing in the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// Unique, readable name (parameter path for parameters).
    pub name: String,
    /// Dimensions as traced.
    pub shape: Vec<usize>,
    /// Per axis: whether the dimension follows the batch size.
    pub dynamic: Vec<bool>,
    /// Producer.
    pub kind: ValueKind,
    /// Module parameter path (`conv1.weight`) when the value is a parameter.
    pub param: Option<String>,
    /// What its elements are.
    pub element: ElementKind,
}

/// The element type of a [`Value`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ElementKind {
    /// `f32`: every constant and almost every value.
    #[default]
    Float,
    /// Integers (`i64` in the IR): an input of token ids.
    Integer,
    /// Booleans: the result of a comparison.
    Boolean,
}

impl Value {
    /// The constant, if this is one.
    pub fn constant(&self) -> Option<&ConstTensor> {
        match &self.kind {
            ValueKind::Constant(c) => Some(c),
            _ => None,
        }
    }
}

/// An operation applied to input values, producing one value.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Input values, in the order [`Op`] documents.
    pub inputs: Vec<ValueId>,
    /// The output value.
    pub output: ValueId,
}

/// A dataflow graph. Nodes are kept in topological order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// All values; the index is the [`ValueId`].
    pub values: Vec<Value>,
    /// Nodes in topological order.
    pub nodes: Vec<Node>,
    /// Runtime inputs, in order.
    pub inputs: Vec<ValueId>,
    /// Outputs, in order.
    pub outputs: Vec<ValueId>,
}

impl Graph {
    /// The value with this id.
    pub fn value(&self, id: ValueId) -> &Value {
        &self.values[id.0]
    }

    /// The constant behind `id`, if it is one.
    pub fn constant(&self, id: ValueId) -> Option<&ConstTensor> {
        self.value(id).constant()
    }

    /// Adds a runtime input.
    pub fn add_input(&mut self, name: impl Into<String>, shape: Vec<usize>) -> ValueId {
        let id = self.push_value(name.into(), shape, ValueKind::Input, None);
        self.inputs.push(id);
        id
    }

    /// Adds a constant.
    pub fn add_constant(
        &mut self,
        name: impl Into<String>,
        tensor: ConstTensor,
        param: Option<String>,
    ) -> ValueId {
        let shape = tensor.shape.clone();
        self.push_value(name.into(), shape, ValueKind::Constant(tensor), param)
    }

    /// Appends a node (its inputs must already exist) and returns its output value.
    pub fn add_node(
        &mut self,
        op: Op,
        inputs: Vec<ValueId>,
        name: impl Into<String>,
        shape: Vec<usize>,
    ) -> ValueId {
        let index = self.nodes.len();
        let output = self.push_value(name.into(), shape, ValueKind::Node(index), None);
        self.nodes.push(Node { op, inputs, output });
        output
    }

    fn push_value(
        &mut self,
        name: String,
        shape: Vec<usize>,
        kind: ValueKind,
        param: Option<String>,
    ) -> ValueId {
        let id = ValueId(self.values.len());
        let dynamic = vec![false; shape.len()];
        self.values.push(Value {
            name,
            shape,
            dynamic,
            kind,
            param,
            element: ElementKind::Float,
        });
        id
    }

    /// The node producing `id`, if any.
    pub fn producer(&self, id: ValueId) -> Option<&Node> {
        match self.value(id).kind {
            ValueKind::Node(i) => Some(&self.nodes[i]),
            _ => None,
        }
    }

    /// For each value, the indices of the nodes consuming it (plus `usize::MAX` per graph output).
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut uses = vec![Vec::new(); self.values.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for input in &node.inputs {
                uses[input.0].push(i);
            }
        }
        for output in &self.outputs {
            uses[output.0].push(usize::MAX);
        }
        uses
    }

    /// Makes every consumer of `old` (and the graph outputs) read `new` instead.
    pub fn replace_uses(&mut self, old: ValueId, new: ValueId) {
        for node in &mut self.nodes {
            for input in &mut node.inputs {
                if *input == old {
                    *input = new;
                }
            }
        }
        for output in &mut self.outputs {
            if *output == old {
                *output = new;
            }
        }
    }

    /// Turns the output of node `index` into a constant; the node becomes dead.
    pub fn set_constant(&mut self, id: ValueId, tensor: ConstTensor) {
        let value = &mut self.values[id.0];
        value.dynamic = vec![false; tensor.shape.len()];
        value.shape = tensor.shape.clone();
        value.kind = ValueKind::Constant(tensor);
    }

    /// Removes nodes that do not contribute to an output and values nobody references, keeping
    /// the order of what remains.
    pub fn remove_dead(&mut self) {
        let mut live_values: HashSet<usize> = self.outputs.iter().map(|v| v.0).collect();
        let mut live_nodes = vec![false; self.nodes.len()];
        for (i, node) in self.nodes.iter().enumerate().rev() {
            if live_values.contains(&node.output.0) {
                live_nodes[i] = true;
                live_values.extend(node.inputs.iter().map(|v| v.0));
            }
        }
        live_values.extend(self.inputs.iter().map(|v| v.0));
        // Renumber values and nodes; values move (constants can be large).
        let mut value_map = vec![usize::MAX; self.values.len()];
        let produced_by: Vec<Option<usize>> = self
            .values
            .iter()
            .map(|v| match v.kind {
                ValueKind::Node(n) => Some(n),
                _ => None,
            })
            .collect();
        let mut values = Vec::new();
        for (i, value) in std::mem::take(&mut self.values).into_iter().enumerate() {
            let keep = live_values.contains(&i) && produced_by[i].is_none_or(|n| live_nodes[n]);
            if keep {
                value_map[i] = values.len();
                values.push(value);
            }
        }
        let mut nodes = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if !live_nodes[i] || produced_by[node.output.0] != Some(i) {
                continue;
            }
            let output = ValueId(value_map[node.output.0]);
            values[output.0].kind = ValueKind::Node(nodes.len());
            nodes.push(Node {
                op: node.op.clone(),
                inputs: node
                    .inputs
                    .iter()
                    .map(|v| ValueId(value_map[v.0]))
                    .collect(),
                output,
            });
        }
        self.inputs = self
            .inputs
            .iter()
            .map(|v| ValueId(value_map[v.0]))
            .collect();
        self.outputs = self
            .outputs
            .iter()
            .map(|v| ValueId(value_map[v.0]))
            .collect();
        self.values = values;
        self.nodes = nodes;
    }

    /// The module path nearest to node `index`: the parameters it consumes, else those of the
    /// closest node (walking inputs and consumers breadth-first) that consumes parameters.
    pub fn module_path_near(&self, index: usize) -> String {
        let consumers = self.consumers();
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([index]);
        while let Some(i) = queue.pop_front() {
            if !seen.insert(i) {
                continue;
            }
            let node = &self.nodes[i];
            for input in &node.inputs {
                if let Some(param) = &self.value(*input).param {
                    return module_of(param);
                }
            }
            for input in &node.inputs {
                if let ValueKind::Node(p) = self.value(*input).kind {
                    queue.push_back(p);
                }
            }
            for &c in &consumers[node.output.0] {
                if c != usize::MAX {
                    queue.push_back(c);
                }
            }
        }
        "<root>".to_string()
    }

    /// Fails with [`GraphError::Unsupported`] on the first live unsupported operation.
    pub fn check_supported(&self) -> Result<()> {
        for (i, node) in self.nodes.iter().enumerate() {
            if let Op::Unsupported { name } = &node.op {
                return Err(GraphError::Unsupported {
                    op: name.clone(),
                    path: self.module_path_near(i),
                });
            }
        }
        Ok(())
    }

    /// Checks structural invariants: ids in range, topological order, producers consistent.
    pub fn validate(&self) -> Result<()> {
        let mut defined: HashSet<ValueId> = self.inputs.iter().copied().collect();
        for (i, v) in self.values.iter().enumerate() {
            if v.constant().is_some() {
                defined.insert(ValueId(i));
            }
            if v.dynamic.len() != v.shape.len() {
                return Err(GraphError::Invalid(format!(
                    "value `{}` rank mismatch",
                    v.name
                )));
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            for input in &node.inputs {
                if !defined.contains(input) {
                    return Err(GraphError::Invalid(format!(
                        "node {i} ({}) reads `{}` before it is defined",
                        node.op.name(),
                        self.value(*input).name
                    )));
                }
            }
            if self.value(node.output).kind != ValueKind::Node(i) {
                return Err(GraphError::Invalid(format!(
                    "node {i} output producer mismatch"
                )));
            }
            defined.insert(node.output);
        }
        for o in &self.outputs {
            if !defined.contains(o) {
                return Err(GraphError::Invalid("undefined graph output".into()));
            }
        }
        Ok(())
    }

    /// Counts live nodes per operation name (handy in tests and reports).
    pub fn op_histogram(&self) -> HashMap<String, usize> {
        let mut h = HashMap::new();
        for node in &self.nodes {
            *h.entry(node.op.name()).or_insert(0) += 1;
        }
        h
    }
}

/// `conv1.weight` -> `conv1`; a top-level parameter keeps its own name.
pub fn module_of(param: &str) -> String {
    match param.rsplit_once('.') {
        Some((module, _)) => module.to_string(),
        None => param.to_string(),
    }
}
