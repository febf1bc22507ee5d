//! Sparsity on the reference CNN and MNIST-10k, run as the recipes in `configs/` describe (from
//! the shared FP32 model): levels reached, accuracy kept, 2:4 exact in every group, and sparse
//! INT8 IRs whose zeros sit where the masks are, on OpenVINO's INT8 kernels.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Tensor;
use burn_compress::openvino::ExportOptions;
use burn_compress::shared::site::effective_weights;
use burn_compress::sparsity::nm::satisfies;
use burn_compress::sparsity::LevelMode;
use burn_compress::sparsity::SparsityMethod;
use burn_compress_recipes::{run_recipe, Recipe, RecipeSummary, ReferenceCnn};

use crate::common::{assert_int8_layers, ir_int8_weight, mnist, trained_fp32};

fn recipe(name: &str) -> Recipe {
    Recipe::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(name),
    )
    .unwrap()
}

/// Runs `recipe` from the shared FP32 model; returns the compressed model (eval mode) and the
/// summary.
fn run(recipe: &Recipe, what: &str) -> (ReferenceCnn, RecipeSummary) {
    let (models, summary) = run_recipe(recipe, &mnist(), Some(trained_fp32()), None).unwrap();
    println!(
        "{what}: FP32 {:.2} %, compressed {:.2} %, sparsity {:?}",
        summary.fp32_accuracy, summary.compressed_accuracy, summary.sparsity
    );
    println!("{}", summary.stats);
    (models.compressed.valid(), summary)
}

fn assert_level(summary: &RecipeSummary, target: f64, points: f64, what: &str) {
    let reached = summary.sparsity.expect("sparsity applied");
    assert!(
        (reached - target).abs() <= points / 100.0,
        "{what}: sparsity {reached} vs target {target}"
    );
}

fn assert_accuracy(summary: &RecipeSummary, points: f64, what: &str) {
    assert!(
        summary.compressed_accuracy >= summary.fp32_accuracy - points,
        "{what}: {} % after fine-tuning, FP32 {} %",
        summary.compressed_accuracy,
        summary.fp32_accuracy
    );
}

#[test]
fn magnitude_50_percent_global_and_local_reach_the_level_and_keep_accuracy() {
    let global = recipe("mnist_magnitude50.json");
    let (_, summary) = run(&global, "magnitude 50 % global");
    assert_level(&summary, 0.5, 0.5, "global");
    assert_accuracy(&summary, 0.5, "global");

    let mut local = global.clone();
    if let Some(SparsityMethod::Magnitude(s)) = local.sparsity.as_mut().map(|s| &mut s.method) {
        s.level_setting = LevelMode::Local;
    }
    let (_, summary) = run(&local, "magnitude 50 % local");
    assert_level(&summary, 0.5, 0.5, "local");
    for w in summary.stats.weights.iter().filter(|w| w.masked) {
        assert!(
            (w.sparsity() - 0.5).abs() <= 0.005,
            "local: `{}` is {:.4} sparse",
            w.param,
            w.sparsity()
        );
    }
    assert_accuracy(&summary, 0.5, "local");
}

#[test]
fn rb_sparsity_reaches_its_target_within_two_points() {
    let (_, summary) = run(&recipe("mnist_rb50.json"), "RB 50 %");
    assert_level(&summary, 0.5, 2.0, "RB");
}

/// Exports `model` (INT8) and checks that every Conv/MatMul runs on INT8 kernels and that the
/// integer weights are zero exactly where the model's effective weights are.
fn assert_sparse_int8_ir(model: &ReferenceCnn, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("sparse.xml");
    let report = burn_compress::export(
        model,
        [1, 1, 28, 28],
        |m: &ReferenceCnn, x: Tensor<4>| m.forward(x),
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(report.quantized_weights().len(), 4, "{what}: {report:?}");
    assert_int8_layers(&xml, "1,1,28,28", 4);
    let weights = effective_weights(model);
    for summary in &report.weights {
        let (dims, values) = &weights[&summary.param];
        let zeros = values.iter().filter(|&&v| v == 0.0).count();
        // Masked weights are zero; a kept weight smaller than half a step may round to zero too.
        assert!(
            summary.zeros >= zeros,
            "{what}: `{}` zeros in the IR",
            summary.param
        );
        let (shape, ints) = ir_int8_weight(&xml, &summary.param);
        // Conv weights keep Burn's layout; Linear weights [d_in, d_out] are written transposed.
        let zero_in_burn: Vec<bool> = if dims.len() == 2 {
            let (rows, cols) = (dims[0], dims[1]);
            assert_eq!(shape, vec![cols, rows]);
            (0..cols)
                .flat_map(|c| (0..rows).map(move |r| (r, c)))
                .map(|(r, c)| values[r * cols + c] == 0.0)
                .collect()
        } else {
            assert_eq!(&shape, dims);
            values.iter().map(|&v| v == 0.0).collect()
        };
        for (i, (&int, zero)) in ints.iter().zip(zero_in_burn).enumerate() {
            if zero {
                assert_eq!(int, 0, "{what}: `{}` element {i}", summary.param);
            }
        }
        println!(
            "{what}: `{}` {:.1} % zeros in the IR",
            summary.param,
            100.0 * summary.sparsity()
        );
    }
}

#[test]
fn two_four_with_int8_holds_the_pattern_keeps_accuracy_and_exports_sparse_int8() {
    let (model, summary) = run(&recipe("mnist_2to4_int8.json"), "2:4 + INT8");
    assert_accuracy(&summary, 1.0, "2:4 + INT8");
    let weights = effective_weights(&model);
    for w in summary.stats.weights.iter().filter(|w| w.masked) {
        let (dims, values) = &weights[&w.param];
        let input_axis = if dims.len() == 2 { 0 } else { 1 };
        assert!(
            satisfies(values, dims, input_axis, 2, 4),
            "`{}` breaks 2:4",
            w.param
        );
        assert_eq!(
            w.zeros * 2,
            w.params,
            "`{}`: exactly half the weights",
            w.param
        );
    }
    assert_sparse_int8_ir(&model, "2:4 + INT8");
}

#[test]
fn magnitude_with_int8_exports_zeros_where_the_masks_are() {
    let (model, summary) = run(
        &recipe("mnist_magnitude50_int8.json"),
        "magnitude 50 % + INT8",
    );
    assert_level(&summary, 0.5, 0.5, "magnitude + INT8");
    assert_accuracy(&summary, 0.5, "magnitude + INT8");
    assert_sparse_int8_ir(&model, "magnitude 50 % + INT8");
}
