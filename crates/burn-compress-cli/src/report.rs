//! The run report: the summary as markdown, per-layer bits and sparsity, and two charts
//! (training curves; per-layer sparsity and weight bits) drawn as SVG with plotters. Every file
//! is written through a temporary name and a rename.

use std::fmt::Write as _;
use std::path::Path;

use burn_compress_recipes::recipe::write_atomically;
use burn_compress_recipes::{Recipe, RecipeSummary};
use plotters::prelude::*;

/// What OpenVINO made of the compressed IR.
pub struct OpenVinoRun {
    /// Top-1 (%) of the IR on the test split.
    pub accuracy: f64,
    /// Share of test images on which the IR and the Burn model predict the same class.
    pub agreement: f64,
    /// Largest logit difference between them.
    pub max_abs_diff: f32,
}

fn bin_bytes(out: &Path, name: &str) -> u64 {
    std::fs::metadata(out.join(name))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// The summary printed at the end of a run (markdown).
pub fn summary_markdown(
    summary: &RecipeSummary,
    openvino: &Result<OpenVinoRun, String>,
    out: &Path,
) -> String {
    let mut text = String::new();
    let w = &mut text;
    let _ = writeln!(
        w,
        "MNIST-10k (train {} / test {}, split index % 5 == 4 -> test)\n",
        summary.split.0, summary.split.1
    );
    let _ = writeln!(w, "| stage | top-1 (%) |\n|---|---|");
    let _ = writeln!(w, "| FP32 (Burn) | {:.2} |", summary.fp32_accuracy);
    if let Some(folded) = summary.folded_accuracy {
        let _ = writeln!(w, "| FP32, BatchNorm folded (Burn) | {folded:.2} |");
    }
    let _ = writeln!(
        w,
        "| compression attached, before fine-tuning (Burn) | {:.2} |",
        summary.init_accuracy
    );
    let _ = writeln!(
        w,
        "| after fine-tuning (Burn) | {:.2} |",
        summary.compressed_accuracy
    );
    match openvino {
        Ok(run) => {
            let _ = writeln!(w, "| compressed IR in OpenVINO | {:.2} |\n", run.accuracy);
            let _ = writeln!(
                w,
                "IR vs Burn model: top-1 agreement {:.2} %, max logit difference {:.4}\n",
                run.agreement * 100.0,
                run.max_abs_diff
            );
        }
        Err(error) => {
            let _ = writeln!(w, "\n(OpenVINO not run: {error})\n");
        }
    }
    let _ = write!(w, "{}", summary.stats);
    if let Some(level) = summary.sparsity {
        let _ = writeln!(w, "sparsity of the masked weights: {:.2} %", 100.0 * level);
    }
    if let Some(pruning) = &summary.pruning {
        let _ = writeln!(
            w,
            "\nchannel pruning (the saved and exported model is shrunk):\n"
        );
        let _ = write!(w, "{pruning}");
    }
    let _ = writeln!(
        w,
        "\nIR .bin: FP32 {} B, compressed {} B",
        bin_bytes(out, "fp32.bin"),
        bin_bytes(out, "compressed.bin")
    );
    let _ = writeln!(
        w,
        "FP32 training {:.1} s, fine-tuning {:.1} s; outputs in {}",
        summary.fp32_seconds,
        summary.finetune_seconds,
        out.display()
    );
    text
}

/// Weight bits of a layer as the recipe quantizes it (32: floating point).
fn weight_bits(recipe: &Recipe, quantized: bool) -> u32 {
    match (&recipe.quantization, quantized) {
        (Some(q), true) => q.config.weights.as_ref().map_or(32, |spec| spec.bits),
        _ => 32,
    }
}

/// Mean of each window of `width` consecutive values.
fn smoothed(values: &[f32], width: usize) -> Vec<(f32, f32)> {
    values
        .chunks(width.max(1))
        .enumerate()
        .map(|(i, chunk)| {
            let x = (i * width + chunk.len() / 2) as f32;
            (x, chunk.iter().sum::<f32>() / chunk.len() as f32)
        })
        .collect()
}

fn chart_error(file: &Path, error: impl std::fmt::Display) -> String {
    format!("cannot draw `{}`: {error}", file.display())
}

/// Training loss per optimizer step (means of 25 steps), FP32 then fine-tuning.
fn loss_chart(summary: &RecipeSummary) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| chart_error(Path::new("loss.svg"), e);
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let fp32 = smoothed(&summary.fp32_losses, 25);
        let offset = summary.fp32_losses.len() as f32;
        let finetune: Vec<(f32, f32)> = smoothed(&summary.finetune_losses, 25)
            .into_iter()
            .map(|(x, y)| (x + offset, y))
            .collect();
        let steps = (summary.fp32_losses.len() + summary.finetune_losses.len()).max(1) as f32;
        let top = fp32
            .iter()
            .chain(&finetune)
            .map(|p| p.1)
            .fold(0.1f32, f32::max);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "training loss (cross-entropy, means of 25 steps)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0f32..steps, 0f32..top * 1.05)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("optimizer step")
            .y_desc("loss")
            .draw()
            .map_err(|e| fail(&e))?;
        for (points, label, color) in [(fp32, "FP32", BLUE), (finetune, "fine-tuning", RED)] {
            if points.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE)
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

/// Per-layer sparsity (bars) and weight bits (labels) of the compressed model.
fn layers_chart(recipe: &Recipe, summary: &RecipeSummary) -> Result<String, String> {
    let weights = &summary.stats.weights;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| chart_error(Path::new("layers.svg"), e);
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let n = weights.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "per-layer sparsity (bars) and weight bits",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(48)
            .build_cartesian_2d((0..n).into_segmented(), 0f64..110f64)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc("zero weights (%)")
            .x_labels(n)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => weights
                    .get(*i)
                    .map(|w| w.param.trim_end_matches(".weight").to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(weights.iter().enumerate().map(|(i, w)| {
                let top = 100.0 * w.sparsity();
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), top),
                    ],
                    BLUE.mix(0.6).filled(),
                );
                bar.set_margin(0, 0, 12, 12);
                bar
            }))
            .map_err(|e| fail(&e))?;
        chart
            .draw_series(weights.iter().enumerate().map(|(i, w)| {
                let bits = weight_bits(recipe, w.quantized);
                Text::new(
                    format!("{bits}-bit, {:.0} %", 100.0 * w.sparsity()),
                    (SegmentValue::CenterOf(i), 100.0 * w.sparsity() + 4.0),
                    ("sans-serif", 14).into_font().color(&BLACK),
                )
            }))
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))?;
    }
    Ok(svg)
}

/// Writes `report.md`, `loss.svg` and `layers.svg` into `out`.
pub fn write(
    config: &Path,
    recipe: &Recipe,
    summary: &RecipeSummary,
    summary_text: &str,
    out: &Path,
) -> Result<(), String> {
    let save = |name: &str, bytes: &[u8]| {
        write_atomically(&out.join(name), bytes).map_err(|e| e.to_string())
    };
    save("loss.svg", loss_chart(summary)?.as_bytes())?;
    save("layers.svg", layers_chart(recipe, summary)?.as_bytes())?;
    let mut report = String::new();
    let _ = writeln!(report, "# burn-compress run: `{}`\n", config.display());
    let _ = writeln!(report, "{summary_text}");
    let _ = writeln!(report, "## Layers\n");
    let _ = writeln!(
        report,
        "| weight | shape | parameters | weight bits | zero weights |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|");
    for w in &summary.stats.weights {
        let shape: Vec<String> = w.dims.iter().map(usize::to_string).collect();
        let _ = writeln!(
            report,
            "| `{}` | {} | {} | {} | {:.2} % |",
            w.param,
            shape.join("×"),
            w.params,
            weight_bits(recipe, w.quantized),
            100.0 * w.sparsity()
        );
    }
    let _ = writeln!(
        report,
        "\n## Charts\n\n![training loss](loss.svg)\n\n![layers](layers.svg)\n"
    );
    let _ = writeln!(
        report,
        "Files: `fp32.bpk`, `compressed.bpk` (Burn checkpoints), `fp32.xml`/`.bin`, \
         `compressed.xml`/`.bin` (OpenVINO IR), `summary.json`."
    );
    save("report.md", report.as_bytes())
}
