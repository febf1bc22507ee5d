//! One-to-one element-wise operations as a table; LeakyRelu (PRelu with a constant slope),
//! HardSigmoid (its alpha and beta as scalar inputs) and element type conversion.

use burn_compress_graph::{Comparison, MathFn, Op};

use super::Lowerer;
use crate::error::Result;
use crate::ir::attr;

/// The OpenVINO layer one graph operation becomes, with its attributes.
pub(super) struct ElementWise {
    /// Layer type.
    pub kind: &'static str,
    /// Opset version.
    pub opset: &'static str,
    /// Attributes.
    pub attrs: Vec<(String, String)>,
}

/// The layer for an operation that maps one-to-one onto an OpenVINO layer with the same inputs;
/// `None` for every other operation.
pub(super) fn table(op: &Op) -> Option<ElementWise> {
    let plain = |kind, opset| ElementWise {
        kind,
        opset,
        attrs: vec![],
    };
    let numpy = |kind| ElementWise {
        kind,
        opset: "opset1",
        attrs: vec![attr("auto_broadcast", "numpy")],
    };
    Some(match op {
        Op::Add => numpy("Add"),
        Op::Sub => numpy("Subtract"),
        Op::Mul => numpy("Multiply"),
        Op::Div => numpy("Divide"),
        Op::Relu => plain("Relu", "opset1"),
        Op::PRelu => plain("PRelu", "opset1"),
        Op::Sigmoid => plain("Sigmoid", "opset1"),
        Op::Tanh => plain("Tanh", "opset1"),
        Op::Exp => plain("Exp", "opset1"),
        Op::Sqrt => plain("Sqrt", "opset1"),
        Op::Erf => plain("Erf", "opset1"),
        Op::Neg => plain("Negative", "opset1"),
        Op::Abs => plain("Abs", "opset1"),
        Op::Log => plain("Log", "opset1"),
        Op::Sign => plain("Sign", "opset1"),
        Op::Math(f) => match f {
            MathFn::Cos => plain("Cos", "opset1"),
            MathFn::Sin => plain("Sin", "opset1"),
            MathFn::Tan => plain("Tan", "opset1"),
            MathFn::Cosh => plain("Cosh", "opset1"),
            MathFn::Sinh => plain("Sinh", "opset1"),
            MathFn::Acos => plain("Acos", "opset1"),
            MathFn::Asin => plain("Asin", "opset1"),
            MathFn::Atan => plain("Atan", "opset1"),
            MathFn::Acosh => plain("Acosh", "opset4"),
            MathFn::Asinh => plain("Asinh", "opset4"),
            MathFn::Atanh => plain("Atanh", "opset4"),
            MathFn::Floor => plain("Floor", "opset1"),
            MathFn::Ceil => plain("Ceiling", "opset1"),
        },
        Op::SoftPlus => plain("SoftPlus", "opset4"),
        Op::Power => numpy("Power"),
        Op::FloorMod => numpy("FloorMod"),
        Op::IsNan => plain("IsNaN", "opset10"),
        Op::IsInf => plain("IsInf", "opset10"),
        Op::Compare(how) => numpy(match how {
            Comparison::Greater => "Greater",
            Comparison::GreaterEqual => "GreaterEqual",
            Comparison::Less => "Less",
            Comparison::LessEqual => "LessEqual",
            Comparison::Equal => "Equal",
            Comparison::NotEqual => "NotEqual",
        }),
        Op::Select => numpy("Select"),
        Op::Not => plain("LogicalNot", "opset1"),
        Op::And => numpy("LogicalAnd"),
        Op::Or => numpy("LogicalOr"),
        Op::Round => ElementWise {
            attrs: vec![attr("mode", "half_to_even")],
            ..plain("Round", "opset5")
        },
        Op::Gelu => ElementWise {
            attrs: vec![attr("approximation_mode", "ERF")],
            ..plain("Gelu", "opset7")
        },
        Op::Softmax { axis } => ElementWise {
            attrs: vec![attr("axis", axis)],
            ..plain("SoftMax", "opset8")
        },
        Op::Clamp { min, max } => ElementWise {
            attrs: vec![attr("min", min), attr("max", max)],
            ..plain("Clamp", "opset1")
        },
        _ => return None,
    })
}

impl Lowerer<'_> {
    /// Convert-1 to node `i`'s output element type.
    pub(super) fn convert(&mut self, i: usize) -> Result<()> {
        let x = self.port_of(self.graph.nodes[i].inputs[0])?;
        let to = self.out_port(self.graph.nodes[i].output).element;
        self.emit(
            i,
            "Convert",
            "opset1",
            vec![attr("destination_type", to.name())],
            &[x],
        );
        Ok(())
    }

    pub(super) fn leaky_relu(&mut self, i: usize, slope: f64) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let s = self.ir.const_f32(
            format!("{}/slope", self.node_names[i]),
            &[1],
            &[slope as f32],
        );
        self.emit(i, "PRelu", "opset1", vec![], &[x, s]);
        Ok(())
    }

    pub(super) fn hard_sigmoid(&mut self, i: usize, alpha: f64, beta: f64) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let name = &self.node_names[i];
        let a = self
            .ir
            .const_f32(format!("{name}/alpha"), &[], &[alpha as f32]);
        let b = self
            .ir
            .const_f32(format!("{name}/beta"), &[], &[beta as f32]);
        self.emit(i, "HardSigmoid", "opset1", vec![], &[x, a, b]);
        Ok(())
    }
}
