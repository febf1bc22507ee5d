//! Statistics of a compressed model: parameter counts and, per Conv/Linear weight, how many of
//! its effective values (mask applied) are zero, as data and as a readable table.

use std::fmt;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::Serialize;

use crate::site::{effective_weights, weight_sites};

/// One Conv/Linear weight.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeightStats {
    /// Parameter path (`conv1.weight`).
    pub param: String,
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Elements.
    pub params: usize,
    /// Elements that are zero after the mask.
    pub zeros: usize,
    /// The weight carries a mask.
    pub masked: bool,
    /// The weight carries a fake-quantizer.
    pub quantized: bool,
}

impl WeightStats {
    /// Fraction of zero elements.
    pub fn sparsity(&self) -> f64 {
        self.zeros as f64 / self.params.max(1) as f64
    }
}

/// Parameter counts and per-weight sparsity of a model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelStats {
    /// Every Conv/Linear weight, in module order.
    pub weights: Vec<WeightStats>,
    /// All parameters of the model itself (compression state such as masks and quantizer
    /// ranges not counted).
    pub total_params: usize,
}

impl ModelStats {
    /// Reads the statistics of `model` (its weights are read back to the host).
    pub fn of<M: Module>(model: &M) -> Self {
        let values = effective_weights(model);
        let weights = weight_sites(model)
            .into_iter()
            .map(|site| {
                let zeros = values
                    .get(&site.param)
                    .map(|(_, v)| v.iter().filter(|&&x| x == 0.0).count())
                    .unwrap_or(0);
                WeightStats {
                    params: site.len(),
                    dims: site.dims.clone(),
                    param: site.param,
                    zeros,
                    masked: site.transform.mask,
                    quantized: site.transform.quantizer,
                }
            })
            .collect();
        let mut counter = ParamCounter::default();
        model.visit(&mut counter);
        Self {
            weights,
            total_params: counter.params,
        }
    }

    /// Zero weights over all Conv/Linear weights.
    pub fn weight_zeros(&self) -> usize {
        self.weights.iter().map(|w| w.zeros).sum()
    }

    /// Elements of all Conv/Linear weights.
    pub fn weight_params(&self) -> usize {
        self.weights.iter().map(|w| w.params).sum()
    }

    /// Sparsity over the masked weights only (the level a sparsity method aims at).
    pub fn masked_sparsity(&self) -> f64 {
        let masked = self.weights.iter().filter(|w| w.masked);
        let (zeros, params) = masked.fold((0, 0), |(z, p), w| (z + w.zeros, p + w.params));
        zeros as f64 / params.max(1) as f64
    }

    /// Parameters that are not zero weights.
    pub fn nonzero_params(&self) -> usize {
        self.total_params - self.weight_zeros()
    }
}

impl fmt::Display for ModelStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .weights
            .iter()
            .map(|w| w.param.len())
            .max()
            .unwrap_or(6)
            .max(6);
        writeln!(
            f,
            "| {:<width$} | {:>18} | {:>9} | {:>8} | mask | int8 |",
            "weight", "shape", "params", "sparsity"
        )?;
        writeln!(
            f,
            "|{}|{}|{}|{}|------|------|",
            "-".repeat(width + 2),
            "-".repeat(20),
            "-".repeat(11),
            "-".repeat(10)
        )?;
        let mark = |b: bool| if b { "yes" } else { "" };
        for w in &self.weights {
            let shape = w
                .dims
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("x");
            writeln!(
                f,
                "| {:<width$} | {shape:>18} | {:>9} | {:>7.2}% | {:<4} | {:<4} |",
                w.param,
                w.params,
                100.0 * w.sparsity(),
                mark(w.masked),
                mark(w.quantized)
            )?;
        }
        writeln!(
            f,
            "weights: {} of {} zero ({:.2}%); masked weights {:.2}% sparse; model parameters: {} ({} non-zero)",
            self.weight_zeros(),
            self.weight_params(),
            100.0 * self.weight_zeros() as f64 / self.weight_params().max(1) as f64,
            100.0 * self.masked_sparsity(),
            self.total_params,
            self.nonzero_params()
        )
    }
}

/// Counts parameters outside reparameterization state.
#[derive(Default)]
struct ParamCounter {
    depth_in_state: usize,
    params: usize,
}

impl ModuleVisitor for ParamCounter {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        if self.depth_in_state > 0 || container_type == "Reparameterization" {
            self.depth_in_state += 1;
        }
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.depth_in_state = self.depth_in_state.saturating_sub(1);
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if self.depth_in_state == 0 {
            self.params += param.dims().iter().product::<usize>();
        }
    }
}
