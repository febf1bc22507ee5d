//! Conversion of Burn's recorded operations into [`Graph`] nodes, one arm per operation.

use std::collections::{BTreeMap, HashMap};

use burn::backend::capture::TensorId;
use burn::backend::ir::{
    ActivationOperationIr, BaseOperationIr, BoolOperationIr, FloatOperationIr, IntOperationIr,
    InterpolateModeIr, ModuleOperationIr, NumericOperationIr, OperationIr, PadModeIr,
    ReduceDimOpIr, ScalarIr, TensorIr,
};
use burn::tensor::{DType, TensorData};

use super::Constants;
use crate::error::{GraphError, Result};
use crate::graph::{
    Comparison, ConvAttrs, ElementKind, Graph, InterpolateMode, MathFn, Op, PadMode, PoolAttrs,
    Reduction, SliceRange, ValueId,
};
use crate::tensor::ConstTensor;

/// The node of a convolution `$o` of any rank, its `(before, after)` padding per axis `$padding`
/// (Burn's IR has one struct per rank).
macro_rules! conv_node {
    ($self:ident, $o:ident, $padding:expr) => {{
        let attrs = conv_attrs(
            &$o.options.stride,
            &$padding,
            &$o.options.dilation,
            $o.options.groups,
        );
        $self.conv(attrs, &$o.x, &$o.weight, $o.bias.as_ref(), &$o.out)
    }};
}

/// The node of a transposed convolution `$o` of any rank (Burn's IR has one struct per rank).
macro_rules! conv_transpose_node {
    ($self:ident, $o:ident) => {{
        let op = conv_transpose(
            &$o.options.stride,
            &$o.options.padding,
            &$o.options.padding_out,
            &$o.options.dilation,
            $o.options.groups,
        );
        $self.conv_like(op, &$o.x, &$o.weight, $o.bias.as_ref(), &$o.out)
    }};
}

/// Converts a recorded Burn operation sequence into a [`Graph`].
pub fn convert(
    operations: &[OperationIr],
    inputs: &[TensorId],
    outputs: &[TensorId],
    values: &BTreeMap<TensorId, TensorData>,
    params: &HashMap<TensorId, String>,
) -> Result<Graph> {
    Converter::new(values.clone(), params, Constants::Values).run(operations, inputs, outputs)
}

impl<'a> Converter<'a> {
    pub(super) fn new(
        values: BTreeMap<TensorId, TensorData>,
        params: &'a HashMap<TensorId, String>,
        constants: Constants,
    ) -> Self {
        Self {
            graph: Graph::default(),
            ids: HashMap::new(),
            values,
            placeholders: HashMap::new(),
            sources: HashMap::new(),
            params,
            constants,
        }
    }

    /// Parameter values by module path, for the placeholders of a trace that keeps values.
    pub(super) fn with_sources(mut self, sources: HashMap<String, Vec<f32>>) -> Self {
        self.sources = sources;
        self
    }

    pub(super) fn run(
        mut self,
        operations: &[OperationIr],
        inputs: &[TensorId],
        outputs: &[TensorId],
    ) -> Result<Graph> {
        for (i, id) in inputs.iter().enumerate() {
            let (shape, dtype) = operations
                .iter()
                .flat_map(|op| op.inputs())
                .find(|t| t.id == *id)
                .map(|t| (t.shape.to_vec(), t.dtype))
                .or_else(|| self.values.get(id).map(|d| (d.shape().to_vec(), d.dtype())))
                .ok_or_else(|| GraphError::Invalid(format!("graph input {id} never used")))?;
            let name = if inputs.len() == 1 {
                "input".to_string()
            } else {
                format!("input{i}")
            };
            let v = self.graph.add_input(name, shape);
            self.graph.values[v.0].element = element_of(dtype);
            self.ids.insert(*id, v);
        }
        for op in operations {
            self.operation(op)?;
        }
        for id in outputs {
            let v = self.value(id, None)?;
            self.graph.outputs.push(v);
        }
        Ok(self.graph)
    }
}

pub(super) struct Converter<'a> {
    graph: Graph,
    ids: HashMap<TensorId, ValueId>,
    /// Recorded values not yet turned into constants.
    values: BTreeMap<TensorId, TensorData>,
    /// Parameter placeholders not yet turned into constants: their shapes, and their values
    /// unless the trace keeps shapes only.
    placeholders: HashMap<TensorId, ConstTensor>,
    /// Parameter values by module path, read from the model for the placeholders.
    sources: HashMap<String, Vec<f32>>,
    params: &'a HashMap<TensorId, String>,
    constants: Constants,
}

fn scalar(s: &ScalarIr) -> f64 {
    match *s {
        ScalarIr::Float(v) => v,
        ScalarIr::Int(v) => v as f64,
        ScalarIr::UInt(v) => v as f64,
        ScalarIr::Bool(v) => f64::from(u8::from(v)),
    }
}

/// The graph's element kind of a Burn dtype.
fn element_of(dtype: DType) -> ElementKind {
    if dtype.is_bool() {
        ElementKind::Boolean
    } else if dtype.is_int() || dtype.is_uint() {
        ElementKind::Integer
    } else {
        ElementKind::Float
    }
}

/// Integers of at most this magnitude are exact in the graph's `f32` constants.
const EXACT_INTEGER: f32 = (1u32 << 24) as f32;

/// The values of a recorded integer or boolean tensor as `f32` (booleans as 0 and 1); `None`
/// where an integer is too large to be exact.
fn non_float_values(data: &TensorData) -> Option<Vec<f32>> {
    if data.dtype().is_bool() {
        return Some(
            data.iter::<bool>()
                .map(|b| f32::from(u8::from(b)))
                .collect(),
        );
    }
    data.iter::<i64>()
        .map(|v| {
            let f = v as f32;
            (f.abs() <= EXACT_INTEGER).then_some(f)
        })
        .collect()
}

fn first_word(debug: String) -> String {
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_string()
}

impl Converter<'_> {
    fn value(&mut self, id: &TensorId, tensor: Option<&TensorIr>) -> Result<ValueId> {
        if let Some(v) = self.ids.get(id) {
            return Ok(*v);
        }
        let param = self.params.get(id).cloned();
        let name = param
            .clone()
            .unwrap_or_else(|| format!("const{}", id.value()));
        if let Some(constant) = self.placeholders.remove(id) {
            // Created where the recorded values would have been, so both traces number their
            // values alike.
            let v = self.graph.add_constant(name, constant, param);
            self.ids.insert(*id, v);
            return Ok(v);
        }
        let data = self.values.remove(id).ok_or_else(|| {
            GraphError::Invalid(format!("tensor {id} is read before it is produced"))
        })?;
        let dtype = data.dtype();
        if !(dtype.is_float() || dtype.is_int() || dtype.is_uint() || dtype.is_bool()) {
            return Err(GraphError::DType {
                dtype: format!("{dtype:?}"),
                tensor: name,
                path: param.unwrap_or_else(|| "<root>".into()),
            });
        }
        let shape = tensor
            .map(|t| t.shape.to_vec())
            .unwrap_or_else(|| data.shape().to_vec());
        let constant = match self.constants {
            Constants::ShapesOnly => ConstTensor {
                shape,
                data: Vec::new(),
            },
            Constants::Values => {
                let floats: Vec<f32> = if dtype == DType::F32 {
                    data.try_into_vec::<f32>()
                        .map_err(|e| GraphError::Capture(format!("{e:?}")))?
                } else if dtype.is_float() {
                    data.iter::<f32>().collect()
                } else {
                    non_float_values(&data).ok_or_else(|| GraphError::DType {
                        dtype: format!("{dtype:?} beyond ±2^24"),
                        tensor: name.clone(),
                        path: param.clone().unwrap_or_else(|| "<root>".into()),
                    })?
                };
                ConstTensor::new(shape, floats)?
            }
        };
        let v = self.graph.add_constant(name, constant, param);
        self.graph.values[v.0].element = element_of(dtype);
        self.ids.insert(*id, v);
        Ok(v)
    }

    fn input(&mut self, t: &TensorIr) -> Result<ValueId> {
        self.value(&t.id, Some(t))
    }

    fn scalar_const(&mut self, value: f64) -> ValueId {
        self.scalar_like(value, ElementKind::Float)
    }

    /// A scalar constant of `element` kind (the operand of an integer operation is an integer).
    fn scalar_like(&mut self, value: f64, element: ElementKind) -> ValueId {
        let n = self.graph.values.len();
        let v = self.graph.add_constant(
            format!("scalar{n}"),
            ConstTensor::scalar(value as f32),
            None,
        );
        self.graph.values[v.0].element = element;
        v
    }

    /// The node of `op` on `inputs`, producing Burn's `out` (its element kind too).
    fn node(&mut self, op: Op, inputs: Vec<ValueId>, out: &TensorIr) -> ValueId {
        let v = self.graph.add_node(
            op,
            inputs,
            format!("t{}", out.id.value()),
            out.shape.to_vec(),
        );
        self.graph.values[v.0].element = element_of(out.dtype);
        self.ids.insert(out.id, v);
        v
    }

    fn unary(&mut self, op: Op, input: &TensorIr, out: &TensorIr) -> Result<()> {
        let x = self.input(input)?;
        self.node(op, vec![x], out);
        Ok(())
    }

    fn binary(&mut self, op: Op, lhs: &TensorIr, rhs: &TensorIr, out: &TensorIr) -> Result<()> {
        let a = self.input(lhs)?;
        let b = self.input(rhs)?;
        self.node(op, vec![a, b], out);
        Ok(())
    }

    fn with_scalar(
        &mut self,
        op: Op,
        lhs: &TensorIr,
        rhs: &ScalarIr,
        out: &TensorIr,
    ) -> Result<()> {
        let a = self.input(lhs)?;
        let element = self.graph.value(a).element;
        let b = self.scalar_like(scalar(rhs), element);
        self.node(op, vec![a, b], out);
        Ok(())
    }

    /// A node of `op` on `inputs` whose output Burn did not record (a step of a decomposition);
    /// its elements are of its first input's kind.
    fn intermediate(
        &mut self,
        op: Op,
        inputs: Vec<ValueId>,
        what: &str,
        shape: Vec<usize>,
    ) -> ValueId {
        let element = inputs
            .first()
            .map_or(ElementKind::Float, |&v| self.graph.value(v).element);
        let n = self.graph.values.len();
        let v = self.graph.add_node(op, inputs, format!("{what}{n}"), shape);
        self.graph.values[v.0].element = element;
        v
    }

    /// A reduction along one axis, kept with length one.
    fn reduce_dim(&mut self, how: Reduction, o: &ReduceDimOpIr) -> Result<()> {
        let op = Op::Reduce {
            how,
            axes: vec![o.axis],
        };
        self.unary(op, &o.input, &o.out)
    }

    /// A reduction over every axis into Burn's one-element `[1]`.
    fn reduce_all(&mut self, how: Reduction, input: &TensorIr, out: &TensorIr) -> Result<()> {
        let x = self.input(input)?;
        self.reduce_all_of(how, x, out)
    }

    fn reduce_all_of(&mut self, how: Reduction, x: ValueId, out: &TensorIr) -> Result<()> {
        let rank = self.graph.value(x).shape.len();
        let op = Op::Reduce {
            how,
            axes: (0..rank).collect(),
        };
        let reduced = self.intermediate(op, vec![x], "reduce", vec![1; rank]);
        self.node(Op::Reshape, vec![reduced], out);
        Ok(())
    }

    /// A node filling the output's shape with `value`.
    fn full(&mut self, value: f64, out: &TensorIr) -> Result<()> {
        self.node(Op::Full { value }, Vec::new(), out);
        Ok(())
    }

    /// A comparison node; its output is boolean.
    fn compare(
        &mut self,
        how: Comparison,
        lhs: &TensorIr,
        rhs: &TensorIr,
        out: &TensorIr,
    ) -> Result<()> {
        self.binary(Op::Compare(how), lhs, rhs, out)
    }

    /// A comparison with a scalar; its output is boolean.
    fn compare_scalar(
        &mut self,
        how: Comparison,
        lhs: &TensorIr,
        rhs: &ScalarIr,
        out: &TensorIr,
    ) -> Result<()> {
        self.with_scalar(Op::Compare(how), lhs, rhs, out)
    }

    fn unsupported(&mut self, name: String, op: &OperationIr) -> Result<()> {
        let mut inputs = Vec::new();
        for t in op.inputs() {
            // Non-float inputs of an unsupported op are not modelled; skip them.
            if let Ok(v) = self.input(t) {
                inputs.push(v);
            }
        }
        let outs: Vec<TensorIr> = op.outputs().cloned().collect();
        for out in &outs {
            self.node(Op::Unsupported { name: name.clone() }, inputs.clone(), out);
        }
        Ok(())
    }

    fn operation(&mut self, operation: &OperationIr) -> Result<()> {
        match operation {
            OperationIr::Init(_) | OperationIr::Drop(_) => Ok(()),
            OperationIr::BaseFloat(op) => self.base(op, operation),
            OperationIr::NumericFloat(_, op) => self.numeric(op, operation),
            OperationIr::Float(_, op) => self.float(op, operation),
            OperationIr::Module(op) => self.module(op, operation),
            OperationIr::Activation(op) => self.activation(op, operation),
            OperationIr::BaseInt(op) | OperationIr::BaseBool(op) => self.base(op, operation),
            OperationIr::NumericInt(_, op) => self.numeric_int(op, operation),
            OperationIr::Int(IntOperationIr::IntoFloat(o)) => {
                self.unary(Op::Convert, &o.input, &o.out)
            }
            OperationIr::Int(op) => {
                self.unsupported(format!("Int{}", first_word(format!("{op:?}"))), operation)
            }
            OperationIr::Bool(op) => self.boolean(op, operation),
            other => self.unsupported(first_word(format!("{other:?}")), operation),
        }
    }

    fn base(&mut self, op: &BaseOperationIr, whole: &OperationIr) -> Result<()> {
        match op {
            BaseOperationIr::Reshape(o) => self.unary(Op::Reshape, &o.input, &o.out),
            BaseOperationIr::SwapDims(o) => {
                let mut perm: Vec<usize> = (0..o.input.shape.num_dims()).collect();
                perm.swap(o.dim1, o.dim2);
                self.unary(Op::Transpose { perm }, &o.input, &o.out)
            }
            BaseOperationIr::Permute(o) => self.unary(
                Op::Transpose {
                    perm: o.axes.clone(),
                },
                &o.input,
                &o.out,
            ),
            BaseOperationIr::Slice(o) => match slice_ranges(&o.ranges, &o.tensor) {
                Some(ranges) => self.unary(Op::Slice { ranges }, &o.tensor, &o.out),
                None => self.unsupported("Slice with a negative step".into(), whole),
            },
            BaseOperationIr::SliceAssign(o) => match slice_ranges(&o.ranges, &o.tensor) {
                Some(ranges) => {
                    self.binary(Op::SliceAssign { ranges }, &o.tensor, &o.value, &o.out)
                }
                None => self.unsupported("SliceAssign with a negative step".into(), whole),
            },
            BaseOperationIr::Flip(o) => self.unary(
                Op::Flip {
                    axes: o.axes.clone(),
                },
                &o.input,
                &o.out,
            ),
            BaseOperationIr::Zeros(o) => self.full(0.0, &o.out),
            BaseOperationIr::Ones(o) => self.full(1.0, &o.out),
            BaseOperationIr::Cat(o) => {
                let mut inputs = Vec::new();
                for t in &o.tensors {
                    inputs.push(self.input(t)?);
                }
                self.node(Op::Concat { axis: o.dim }, inputs, &o.out);
                Ok(())
            }
            BaseOperationIr::Empty(o) => {
                let Some(path) = self.params.get(&o.out.id) else {
                    // An uninitialised tensor the forward itself creates (a buffer it fills
                    // with `slice_assign`, for one): zeros.
                    return self.full(0.0, &o.out);
                };
                let shape = o.out.shape.to_vec();
                let constant = match self.constants {
                    Constants::ShapesOnly => ConstTensor {
                        shape,
                        data: Vec::new(),
                    },
                    Constants::Values => {
                        let data = self.sources.remove(path).ok_or_else(|| {
                            GraphError::Invalid(format!("parameter `{path}` has no value"))
                        })?;
                        ConstTensor::new(shape, data)?
                    }
                };
                self.placeholders.insert(o.out.id, constant);
                Ok(())
            }
            BaseOperationIr::Equal(o) => self.compare(Comparison::Equal, &o.lhs, &o.rhs, &o.out),
            BaseOperationIr::EqualElem(o) => {
                self.compare_scalar(Comparison::Equal, &o.lhs, &o.rhs, &o.out)
            }
            BaseOperationIr::NotEqual(o) => {
                self.compare(Comparison::NotEqual, &o.lhs, &o.rhs, &o.out)
            }
            BaseOperationIr::NotEqualElem(o) => {
                self.compare_scalar(Comparison::NotEqual, &o.lhs, &o.rhs, &o.out)
            }
            BaseOperationIr::All(o) => self.reduce_all(Reduction::All, &o.input, &o.out),
            BaseOperationIr::Any(o) => self.reduce_all(Reduction::Any, &o.input, &o.out),
            BaseOperationIr::AllDim(o) => self.reduce_dim(Reduction::All, o),
            BaseOperationIr::AnyDim(o) => self.reduce_dim(Reduction::Any, o),
            BaseOperationIr::MaskWhere(o) => {
                let inputs = vec![
                    self.input(&o.mask)?,
                    self.input(&o.value)?,
                    self.input(&o.tensor)?,
                ];
                self.node(Op::Select, inputs, &o.out);
                Ok(())
            }
            BaseOperationIr::MaskFill(o) => {
                let mask = self.input(&o.mask)?;
                let tensor = self.input(&o.tensor)?;
                let element = self.graph.value(tensor).element;
                let value = self.scalar_like(scalar(&o.value), element);
                self.node(Op::Select, vec![mask, value, tensor], &o.out);
                Ok(())
            }
            BaseOperationIr::Cast(o) if element_of(o.input.dtype) == element_of(o.out.dtype) => {
                // Every float is f32 in the graph, every integer i64.
                let x = self.input(&o.input)?;
                self.ids.insert(o.out.id, x);
                Ok(())
            }
            // From float, the conversion would round: refused, as `int()` is.
            BaseOperationIr::Cast(o) if o.input.dtype.is_float() => {
                self.unsupported("Cast from float".into(), whole)
            }
            BaseOperationIr::Cast(o) => self.unary(Op::Convert, &o.input, &o.out),
            BaseOperationIr::Expand(o) => self.unary(Op::Expand, &o.input, &o.out),
            BaseOperationIr::Gather(o) => self.binary(
                Op::GatherElements { axis: o.dim },
                &o.tensor,
                &o.indices,
                &o.out,
            ),
            BaseOperationIr::Select(o) => {
                self.binary(Op::Gather { axis: o.dim }, &o.tensor, &o.indices, &o.out)
            }
            BaseOperationIr::RepeatDim(o) => {
                let mut repeats = vec![1; o.tensor.shape.num_dims()];
                repeats[o.dim] = o.times;
                self.unary(Op::Tile { repeats }, &o.tensor, &o.out)
            }
            other => self.unsupported(first_word(format!("{other:?}")), whole),
        }
    }

    fn numeric(&mut self, op: &NumericOperationIr, whole: &OperationIr) -> Result<()> {
        use NumericOperationIr as N;
        match op {
            N::Add(o) => self.binary(Op::Add, &o.lhs, &o.rhs, &o.out),
            N::Sub(o) => self.binary(Op::Sub, &o.lhs, &o.rhs, &o.out),
            N::Mul(o) => self.binary(Op::Mul, &o.lhs, &o.rhs, &o.out),
            N::Div(o) => self.binary(Op::Div, &o.lhs, &o.rhs, &o.out),
            N::AddScalar(o) => self.with_scalar(Op::Add, &o.lhs, &o.rhs, &o.out),
            N::SubScalar(o) => self.with_scalar(Op::Sub, &o.lhs, &o.rhs, &o.out),
            N::MulScalar(o) => self.with_scalar(Op::Mul, &o.lhs, &o.rhs, &o.out),
            N::DivScalar(o) => self.with_scalar(Op::Div, &o.lhs, &o.rhs, &o.out),
            N::Abs(o) => self.unary(Op::Abs, &o.input, &o.out),
            N::Sign(o) => self.unary(Op::Sign, &o.input, &o.out),
            N::Neg(o) => self.unary(Op::Neg, &o.input, &o.out),
            N::Clamp(o) => self.unary(
                Op::Clamp {
                    min: scalar(&o.min),
                    max: scalar(&o.max),
                },
                &o.tensor,
                &o.out,
            ),
            N::ClampMin(o) => self.unary(
                Op::Clamp {
                    min: scalar(&o.rhs),
                    max: f32::MAX as f64,
                },
                &o.lhs,
                &o.out,
            ),
            N::ClampMax(o) => self.unary(
                Op::Clamp {
                    min: f32::MIN as f64,
                    max: scalar(&o.rhs),
                },
                &o.lhs,
                &o.out,
            ),
            N::Pad(o) => {
                let mode = match o.mode {
                    PadModeIr::Constant(value) => PadMode::Constant(scalar(&value)),
                    PadModeIr::Reflect => PadMode::Reflect,
                    PadModeIr::Edge => PadMode::Edge,
                };
                let pads = o.padding.clone();
                self.unary(Op::Pad { pads, mode }, &o.input, &o.out)
            }
            N::Greater(o) => self.compare(Comparison::Greater, &o.lhs, &o.rhs, &o.out),
            N::GreaterEqual(o) => self.compare(Comparison::GreaterEqual, &o.lhs, &o.rhs, &o.out),
            N::Lower(o) => self.compare(Comparison::Less, &o.lhs, &o.rhs, &o.out),
            N::LowerEqual(o) => self.compare(Comparison::LessEqual, &o.lhs, &o.rhs, &o.out),
            N::GreaterElem(o) => self.compare_scalar(Comparison::Greater, &o.lhs, &o.rhs, &o.out),
            N::GreaterEqualElem(o) => {
                self.compare_scalar(Comparison::GreaterEqual, &o.lhs, &o.rhs, &o.out)
            }
            N::LowerElem(o) => self.compare_scalar(Comparison::Less, &o.lhs, &o.rhs, &o.out),
            N::LowerEqualElem(o) => {
                self.compare_scalar(Comparison::LessEqual, &o.lhs, &o.rhs, &o.out)
            }
            N::PowiScalar(o) => self.with_scalar(Op::Power, &o.lhs, &o.rhs, &o.out),
            N::Full(o) => self.full(scalar(&o.value), &o.out),
            N::MeanDim(o) => self.reduce_dim(Reduction::Mean, o),
            N::SumDim(o) => self.reduce_dim(Reduction::Sum, o),
            N::ProdDim(o) => self.reduce_dim(Reduction::Prod, o),
            N::MaxDim(o) => self.reduce_dim(Reduction::Max, o),
            N::MinDim(o) => self.reduce_dim(Reduction::Min, o),
            N::SumDims(o) => self.unary(
                Op::Reduce {
                    how: Reduction::Sum,
                    axes: o.axes.clone(),
                },
                &o.input,
                &o.out,
            ),
            N::Mean(o) => self.reduce_all(Reduction::Mean, &o.input, &o.out),
            N::Sum(o) => self.reduce_all(Reduction::Sum, &o.input, &o.out),
            N::Prod(o) => self.reduce_all(Reduction::Prod, &o.input, &o.out),
            N::Max(o) => self.reduce_all(Reduction::Max, &o.input, &o.out),
            N::Min(o) => self.reduce_all(Reduction::Min, &o.input, &o.out),
            N::MaxAbs(o) => {
                let x = self.input(&o.input)?;
                let abs = self.intermediate(Op::Abs, vec![x], "max_abs", o.input.shape.to_vec());
                self.reduce_all_of(Reduction::Max, abs, &o.out)
            }
            N::MaxAbsDim(o) => {
                let x = self.input(&o.input)?;
                let abs = self.intermediate(Op::Abs, vec![x], "max_abs", o.input.shape.to_vec());
                let op = Op::Reduce {
                    how: Reduction::Max,
                    axes: vec![o.axis],
                };
                self.node(op, vec![abs], &o.out);
                Ok(())
            }
            N::ArgMax(o) | N::ArgMin(o) => {
                let largest = matches!(op, N::ArgMax(_));
                let op = Op::ArgExtreme {
                    axis: o.axis,
                    largest,
                };
                self.unary(op, &o.input, &o.out)
            }
            N::CumSum(o) => self.unary(Op::CumSum { axis: o.axis }, &o.input, &o.out),
            N::Rem(o) => self.binary(Op::FloorMod, &o.lhs, &o.rhs, &o.out),
            N::RemScalar(o) => self.with_scalar(Op::FloorMod, &o.lhs, &o.rhs, &o.out),
            other => self.unsupported(first_word(format!("{other:?}")), whole),
        }
    }

    /// Integer arithmetic: what [`Converter::numeric`] does where integers and `f32` agree
    /// (sums, differences, products, comparisons, clamping, padding); integer division,
    /// remainders and means round differently and are refused.
    fn numeric_int(&mut self, op: &NumericOperationIr, whole: &OperationIr) -> Result<()> {
        use NumericOperationIr as N;
        match op {
            N::Div(_)
            | N::DivScalar(_)
            | N::Rem(_)
            | N::RemScalar(_)
            | N::MeanDim(_)
            | N::Mean(_) => {
                self.unsupported(format!("Int{}", first_word(format!("{op:?}"))), whole)
            }
            _ => self.numeric(op, whole),
        }
    }

    fn boolean(&mut self, op: &BoolOperationIr, whole: &OperationIr) -> Result<()> {
        use BoolOperationIr as B;
        match op {
            B::IntoFloat(o) | B::IntoInt(o) => self.unary(Op::Convert, &o.input, &o.out),
            B::Not(o) => self.unary(Op::Not, &o.input, &o.out),
            B::And(o) => self.binary(Op::And, &o.lhs, &o.rhs, &o.out),
            B::Or(o) => self.binary(Op::Or, &o.lhs, &o.rhs, &o.out),
            other => self.unsupported(format!("Bool{}", first_word(format!("{other:?}"))), whole),
        }
    }

    fn float(&mut self, op: &FloatOperationIr, whole: &OperationIr) -> Result<()> {
        use FloatOperationIr as F;
        match op {
            F::Exp(o) => self.unary(Op::Exp, &o.input, &o.out),
            F::Sqrt(o) => self.unary(Op::Sqrt, &o.input, &o.out),
            F::Log(o) => self.unary(Op::Log, &o.input, &o.out),
            F::Cos(o) => self.unary(Op::Math(MathFn::Cos), &o.input, &o.out),
            F::Sin(o) => self.unary(Op::Math(MathFn::Sin), &o.input, &o.out),
            F::Tan(o) => self.unary(Op::Math(MathFn::Tan), &o.input, &o.out),
            F::Cosh(o) => self.unary(Op::Math(MathFn::Cosh), &o.input, &o.out),
            F::Sinh(o) => self.unary(Op::Math(MathFn::Sinh), &o.input, &o.out),
            F::ArcCos(o) => self.unary(Op::Math(MathFn::Acos), &o.input, &o.out),
            F::ArcSin(o) => self.unary(Op::Math(MathFn::Asin), &o.input, &o.out),
            F::ArcTan(o) => self.unary(Op::Math(MathFn::Atan), &o.input, &o.out),
            F::ArcCosh(o) => self.unary(Op::Math(MathFn::Acosh), &o.input, &o.out),
            F::ArcSinh(o) => self.unary(Op::Math(MathFn::Asinh), &o.input, &o.out),
            F::ArcTanh(o) => self.unary(Op::Math(MathFn::Atanh), &o.input, &o.out),
            F::Floor(o) => self.unary(Op::Math(MathFn::Floor), &o.input, &o.out),
            F::Ceil(o) => self.unary(Op::Math(MathFn::Ceil), &o.input, &o.out),
            F::Log1p(o) => {
                // log(1 + x).
                let x = self.input(&o.input)?;
                let one = self.scalar_const(1.0);
                let shifted =
                    self.intermediate(Op::Add, vec![x, one], "log1p", o.out.shape.to_vec());
                self.node(Op::Log, vec![shifted], &o.out);
                Ok(())
            }
            F::PowfScalar(o) => self.with_scalar(Op::Power, &o.lhs, &o.rhs, &o.out),
            F::Powf(o) => self.binary(Op::Power, &o.lhs, &o.rhs, &o.out),
            F::Erf(o) => self.unary(Op::Erf, &o.input, &o.out),
            F::Tanh(o) => self.unary(Op::Tanh, &o.input, &o.out),
            F::Round(o) => self.unary(Op::Round, &o.input, &o.out),
            F::Matmul(o) => self.binary(Op::MatMul, &o.lhs, &o.rhs, &o.out),
            F::IsNan(o) => self.unary(Op::IsNan, &o.input, &o.out),
            F::IsInf(o) => self.unary(Op::IsInf, &o.input, &o.out),
            F::Recip(o) => {
                let one = self.scalar_const(1.0);
                let x = self.input(&o.input)?;
                self.node(Op::Div, vec![one, x], &o.out);
                Ok(())
            }
            other => self.unsupported(first_word(format!("{other:?}")), whole),
        }
    }

    fn module(&mut self, op: &ModuleOperationIr, whole: &OperationIr) -> Result<()> {
        use ModuleOperationIr as M;
        match op {
            M::Conv1d(o) => conv_node!(self, o, o.options.padding),
            M::Conv2d(o) => conv_node!(self, o, o.options.padding),
            M::Conv3d(o) => conv_node!(self, o, o.options.padding.map(|p| (p, p))),
            M::ConvTranspose1d(o) => conv_transpose_node!(self, o),
            M::ConvTranspose2d(o) => conv_transpose_node!(self, o),
            M::ConvTranspose3d(o) => conv_transpose_node!(self, o),
            M::Linear(o) => {
                let x = self.input(&o.x)?;
                let w = self.input(&o.weight)?;
                match &o.bias {
                    None => {
                        self.node(Op::MatMul, vec![x, w], &o.out);
                    }
                    Some(bias) => {
                        let b = self.input(bias)?;
                        let n = self.graph.values.len();
                        let m = self.graph.add_node(
                            Op::MatMul,
                            vec![x, w],
                            format!("linear{n}"),
                            o.out.shape.to_vec(),
                        );
                        self.node(Op::Add, vec![m, b], &o.out);
                    }
                }
                Ok(())
            }
            M::Embedding(o) => self.binary(Op::Gather { axis: 0 }, &o.weights, &o.indices, &o.out),
            M::DeformableConv2d(o) => {
                let conv = conv_attrs(
                    &o.options.stride,
                    &o.options.padding.map(|p| (p, p)),
                    &o.options.dilation,
                    o.options.weight_groups,
                );
                let mut inputs = vec![
                    self.input(&o.x)?,
                    self.input(&o.offset)?,
                    self.input(&o.weight)?,
                ];
                if let Some(mask) = &o.mask {
                    inputs.push(self.input(mask)?);
                }
                let op = Op::DeformConv {
                    conv,
                    offset_groups: o.options.offset_groups,
                };
                let Some(bias) = &o.bias else {
                    self.node(op, inputs, &o.out);
                    return Ok(());
                };
                // The bias over axis 1: `[C]` reshaped to `[1, C, 1, 1]` (folded), then added.
                let shape = o.out.shape.to_vec();
                let n = self.graph.values.len();
                let convolved =
                    self.graph
                        .add_node(op, inputs, format!("deform_conv{n}"), shape.clone());
                let b = self.input(bias)?;
                let channels = shape[1];
                let per_channel = self.graph.add_node(
                    Op::Reshape,
                    vec![b],
                    format!("deform_conv{n}.bias"),
                    vec![1, channels, 1, 1],
                );
                self.node(Op::Add, vec![convolved, per_channel], &o.out);
                Ok(())
            }
            M::Unfold4d(o) => {
                // A convolution whose one-hot filters pick one (channel, kernel row, kernel
                // column) each, in Burn's output order, then the spatial axes flattened.
                let x = self.input(&o.x)?;
                let [c, h, w] = [o.x.shape[1], o.x.shape[2], o.x.shape[3]];
                let [kh, kw] = o.kernel_size;
                let (stride, padding, dilation) =
                    (o.options.stride, o.options.padding, o.options.dilation);
                let out_size = |size: usize, axis: usize| {
                    let k = [kh, kw][axis];
                    (size + 2 * padding[axis] - dilation[axis] * (k - 1) - 1) / stride[axis] + 1
                };
                let n = self.graph.values.len();
                let weight = self.graph.add_constant(
                    format!("unfold{n}.weight"),
                    one_hot_unfold_filters(c, kh, kw)?,
                    None,
                );
                let attrs = conv_attrs(&stride, &padding.map(|p| (p, p)), &dilation, 1);
                let shape = vec![o.x.shape[0], c * kh * kw, out_size(h, 0), out_size(w, 1)];
                let conv = self.graph.add_node(
                    Op::Conv(attrs),
                    vec![x, weight],
                    format!("unfold{n}"),
                    shape,
                );
                self.node(Op::Reshape, vec![conv], &o.out);
                Ok(())
            }
            M::BatchNorm(o) => {
                let inputs = vec![
                    self.input(&o.x)?,
                    self.input(&o.gamma)?,
                    self.input(&o.beta)?,
                    self.input(&o.mean)?,
                    self.input(&o.variance)?,
                ];
                self.node(
                    Op::BatchNorm {
                        epsilon: scalar(&o.epsilon),
                    },
                    inputs,
                    &o.out,
                );
                Ok(())
            }
            M::LayerNorm(o) => {
                let mut inputs = vec![self.input(&o.input)?, self.input(&o.gamma)?];
                if let Some(beta) = &o.beta {
                    inputs.push(self.input(beta)?);
                }
                self.node(
                    Op::LayerNorm {
                        epsilon: scalar(&o.epsilon),
                    },
                    inputs,
                    &o.out,
                );
                Ok(())
            }
            M::MaxPool2d(o) => self.unary(
                Op::MaxPool(PoolAttrs {
                    kernel: o.kernel_size.to_vec(),
                    stride: o.stride.to_vec(),
                    padding: o.padding.to_vec(),
                    dilation: o.dilation.to_vec(),
                    ceil_mode: o.ceil_mode,
                }),
                &o.x,
                &o.out,
            ),
            M::AvgPool2d(o) => self.unary(
                Op::AvgPool {
                    pool: PoolAttrs {
                        kernel: o.kernel_size.to_vec(),
                        stride: o.stride.to_vec(),
                        padding: o.padding.to_vec(),
                        dilation: vec![1, 1],
                        ceil_mode: o.ceil_mode,
                    },
                    count_include_pad: o.count_include_pad,
                },
                &o.x,
                &o.out,
            ),
            M::AdaptiveAvgPool2d(o) => self.unary(
                Op::AdaptiveAvgPool {
                    output_size: o.output_size.to_vec(),
                },
                &o.x,
                &o.out,
            ),
            M::AdaptiveAvgPool1d(o) => self.unary(
                Op::AdaptiveAvgPool {
                    output_size: vec![o.output_size],
                },
                &o.x,
                &o.out,
            ),
            M::AdaptiveAvgPool3d(o) => self.unary(
                Op::AdaptiveAvgPool {
                    output_size: o.output_size.to_vec(),
                },
                &o.x,
                &o.out,
            ),
            M::MaxPool1d(o) => self.unary(
                Op::MaxPool(PoolAttrs {
                    kernel: vec![o.kernel_size],
                    stride: vec![o.stride],
                    padding: vec![o.padding],
                    dilation: vec![o.dilation],
                    ceil_mode: o.ceil_mode,
                }),
                &o.x,
                &o.out,
            ),
            M::AvgPool1d(o) => self.unary(
                Op::AvgPool {
                    pool: PoolAttrs {
                        kernel: vec![o.kernel_size],
                        stride: vec![o.stride],
                        padding: vec![o.padding],
                        dilation: vec![1],
                        ceil_mode: o.ceil_mode,
                    },
                    count_include_pad: o.count_include_pad,
                },
                &o.x,
                &o.out,
            ),
            M::Interpolate(o) => {
                let mode = match o.options.mode {
                    InterpolateModeIr::Nearest => InterpolateMode::Nearest,
                    InterpolateModeIr::Bilinear => InterpolateMode::Bilinear,
                    InterpolateModeIr::Bicubic => InterpolateMode::Bicubic,
                    InterpolateModeIr::NearestExact => InterpolateMode::NearestExact,
                    InterpolateModeIr::Lanczos3 => InterpolateMode::Lanczos3,
                };
                let op = Op::Interpolate {
                    mode,
                    align_corners: o.options.align_corners,
                    output_size: o.output_size.to_vec(),
                };
                self.unary(op, &o.x, &o.out)
            }
            other => self.unsupported(first_word(format!("{other:?}")), whole),
        }
    }

    fn conv(
        &mut self,
        attrs: ConvAttrs,
        x: &TensorIr,
        weight: &TensorIr,
        bias: Option<&TensorIr>,
        out: &TensorIr,
    ) -> Result<()> {
        self.conv_like(Op::Conv(attrs), x, weight, bias, out)
    }

    /// A node `[x, weight, bias?]`.
    fn conv_like(
        &mut self,
        op: Op,
        x: &TensorIr,
        weight: &TensorIr,
        bias: Option<&TensorIr>,
        out: &TensorIr,
    ) -> Result<()> {
        let mut inputs = vec![self.input(x)?, self.input(weight)?];
        if let Some(b) = bias {
            inputs.push(self.input(b)?);
        }
        self.node(op, inputs, out);
        Ok(())
    }

    fn activation(&mut self, op: &ActivationOperationIr, whole: &OperationIr) -> Result<()> {
        use ActivationOperationIr as A;
        match op {
            A::Relu(o) => self.unary(Op::Relu, &o.input, &o.out),
            A::Gelu(o) => self.unary(Op::Gelu, &o.input, &o.out),
            A::Sigmoid(o) => self.unary(Op::Sigmoid, &o.input, &o.out),
            A::LeakyRelu(o) => self.unary(
                Op::LeakyRelu {
                    slope: scalar(&o.rhs),
                },
                &o.lhs,
                &o.out,
            ),
            A::LogSigmoid(o) => {
                // log(sigmoid(x)) = -softplus(-x), without overflow for large |x|.
                let x = self.input(&o.input)?;
                let shape = o.out.shape.to_vec();
                let negated = self.intermediate(Op::Neg, vec![x], "log_sigmoid", shape.clone());
                let softplus = self.intermediate(Op::SoftPlus, vec![negated], "log_sigmoid", shape);
                self.node(Op::Neg, vec![softplus], &o.out);
                Ok(())
            }
            A::Softmax(o) => self.unary(Op::Softmax { axis: o.axis }, &o.input, &o.out),
            A::PRelu(o) => self.binary(Op::PRelu, &o.lhs, &o.rhs, &o.out),
            A::HardSigmoid(o) => self.unary(
                Op::HardSigmoid {
                    alpha: scalar(&o.alpha),
                    beta: scalar(&o.beta),
                },
                &o.tensor,
                &o.out,
            ),
            other => self.unsupported(first_word(format!("{other:?}")), whole),
        }
    }
}

/// Burn's slice ranges on `tensor` resolved against its shape; `None` for a negative step.
fn slice_ranges(ranges: &[burn::tensor::Slice], tensor: &TensorIr) -> Option<Vec<SliceRange>> {
    ranges
        .iter()
        .enumerate()
        .map(|(axis, s)| {
            let dim = tensor.shape[axis] as isize;
            let resolve = |v: isize| if v < 0 { (v + dim).max(0) } else { v.min(dim) };
            (s.step >= 1).then(|| SliceRange {
                start: resolve(s.start) as usize,
                end: s.end.map(resolve).unwrap_or(dim) as usize,
                step: s.step as usize,
            })
        })
        .collect()
}

/// Filters `[c·kh·kw, c, kh, kw]` of an unfold as a convolution: filter `(ch·kh + i)·kw + j`
/// is 1 at channel `ch`, row `i`, column `j` and 0 elsewhere.
fn one_hot_unfold_filters(c: usize, kh: usize, kw: usize) -> Result<ConstTensor> {
    let window = kh * kw;
    let mut data = vec![0.0f32; c * window * c * window];
    for ch in 0..c {
        for k in 0..window {
            let filter = ch * window + k;
            data[(filter * c + ch) * window + k] = 1.0;
        }
    }
    ConstTensor::new(vec![c * window, c, kh, kw], data)
}

/// A transposed convolution from Burn's per-axis options (symmetric padding).
fn conv_transpose(
    stride: &[usize],
    padding: &[usize],
    padding_out: &[usize],
    dilation: &[usize],
    groups: usize,
) -> Op {
    let padding: Vec<(usize, usize)> = padding.iter().map(|&p| (p, p)).collect();
    Op::ConvTranspose {
        conv: conv_attrs(stride, &padding, dilation, groups),
        output_padding: padding_out.to_vec(),
    }
}

/// Convolution attributes from Burn's per-axis options (any number of spatial axes).
fn conv_attrs(
    stride: &[usize],
    padding: &[(usize, usize)],
    dilation: &[usize],
    groups: usize,
) -> ConvAttrs {
    ConvAttrs {
        stride: stride.to_vec(),
        pads_begin: padding.iter().map(|p| p.0).collect(),
        pads_end: padding.iter().map(|p| p.1).collect(),
        dilation: dilation.to_vec(),
        groups,
    }
}
