//! End-to-end tests of burn-compress. Every exported IR is read, compiled and run by OpenVINO's
//! real runtime (through the Rust `openvino` crate and/or `scripts/ov_check.py`) and compared
//! with Burn's own forward.

mod checkpoints;
mod common;
mod compose;
mod config_controller;
mod export_deconv_int8;
mod export_errors;
mod export_fp32;
mod export_layers;
mod export_masks;
mod export_quantized;
mod export_reductions;
mod export_tensor_layers;
mod learner;
mod pruning;
mod qat_recipe;
mod qat_stress;
mod quantizer_checks;
mod resume;
mod sparsity_recipes;
