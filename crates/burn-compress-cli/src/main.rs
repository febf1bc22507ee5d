//! `burn-compress`: run compression recipes, export to OpenVINO IR, evaluate IRs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress::openvino::{compare, export, ExportOptions, Precision, Runtime};
use burn_compress_recipes::train::{predict, progress_bar, top1};
use burn_compress_recipes::{mnist, run_qat, Mnist, MnistSplit, QatRecipe, ReferenceCnn};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "burn-compress",
    version,
    about = "Training-time model compression for Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the reference CNN in FP32, attach quantizers, fine-tune (QAT), export both models
    /// to OpenVINO IR and compare the INT8 IR with the Burn QAT model.
    Qat {
        /// Recipe config (JSON).
        #[arg(long, default_value = "configs/mnist_qat.json")]
        config: PathBuf,
        /// Folder with the MNIST IDX files (default: the repository's data/mnist-10k).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Folder for checkpoints, IRs and summary.json.
        #[arg(long, default_value = "out/mnist_qat")]
        out: PathBuf,
    },
    /// Top-1 accuracy of an exported MNIST classifier IR on the test split, run by OpenVINO.
    Eval {
        /// The IR's `.xml` file.
        ir: PathBuf,
        /// Folder with the MNIST IDX files.
        #[arg(long)]
        data: Option<PathBuf>,
    },
}

/// Logits of `ir` for every image of `split`, run by OpenVINO in f32 in batches of 250.
fn openvino_logits(ir: &Path, split: &MnistSplit) -> Result<Vec<f32>, String> {
    let mut runtime = Runtime::new().map_err(|e| e.to_string())?;
    let mut compiled = runtime
        .compile(ir, Precision::F32)
        .map_err(|e| e.to_string())?;
    let batches = split.batch_indices(250, None);
    let bar = progress_bar(batches.len(), "openvino");
    let mut logits = Vec::new();
    for indices in batches {
        let pixels = mnist::SIDE * mnist::SIDE;
        let images: Vec<f32> = indices
            .iter()
            .flat_map(|&i| split.images[i * pixels..(i + 1) * pixels].iter().copied())
            .collect();
        let input = TensorData::new(images, [indices.len(), 1, mnist::SIDE, mnist::SIDE]);
        let out = compiled.infer(&input).map_err(|e| e.to_string())?;
        logits.extend(out.iter::<f32>());
        bar.inc(1);
    }
    bar.finish();
    Ok(logits)
}

fn export_model(model: &ReferenceCnn, path: &Path, name: &str) -> Result<(), String> {
    let options = ExportOptions {
        name: name.into(),
        ..ExportOptions::default()
    };
    let report = export(
        model,
        [1, 1, 28, 28],
        |m, x: Tensor<4>| m.forward(x),
        path,
        &options,
    )
    .map_err(|e| e.to_string())?;
    println!(
        "exported {} ({} layers, .bin {} bytes, {} activation FakeQuantize, {} int8 weights) in {:.0} ms",
        report.xml.display(),
        report.layers,
        report.bin_bytes,
        report.activation_quantizers,
        report.quantized_weights,
        report.elapsed.as_secs_f64() * 1e3
    );
    Ok(())
}

fn qat(config: &Path, data: Option<PathBuf>, out: &Path) -> Result<(), String> {
    let recipe = QatRecipe::from_file(config).map_err(|e| e.to_string())?;
    let dataset =
        Mnist::load(&data.unwrap_or_else(mnist::default_dir)).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let (models, summary) = run_qat(&recipe, &dataset, Some(out)).map_err(|e| e.to_string())?;

    let (fp32, qat) = (models.fp32.valid(), models.qat.valid());
    export_model(&fp32, &out.join("fp32.xml"), "reference_cnn_fp32")?;
    export_model(&qat, &out.join("int8.xml"), "reference_cnn_int8")?;
    let burn_logits = predict(&qat, &dataset.test, 250, &Device::flex());
    let openvino = openvino_logits(&out.join("int8.xml"), &dataset.test);

    println!();
    println!(
        "MNIST-10k (train {} / test {}, split index % 5 == 4 -> test)",
        summary.split.0, summary.split.1
    );
    println!("| stage | top-1 (%) |");
    println!("|---|---|");
    println!("| FP32 (Burn) | {:.2} |", summary.fp32_accuracy);
    if let Some(folded) = summary.folded_accuracy {
        println!("| FP32, BatchNorm folded (Burn) | {folded:.2} |");
    }
    println!(
        "| INT8 after range init (Burn, fake-quant) | {:.2} |",
        summary.init_accuracy
    );
    println!(
        "| INT8 after QAT (Burn, fake-quant) | {:.2} |",
        summary.qat_accuracy
    );
    match openvino {
        Ok(logits) => {
            let agreement = compare(&burn_logits, &logits, 10);
            println!(
                "| INT8 IR in OpenVINO | {:.2} |",
                top1(&logits, &dataset.test.labels)
            );
            println!(
                "INT8 IR vs Burn QAT model: top-1 agreement {:.2} %, max logit difference {:.4}",
                agreement.top1_agreement * 100.0,
                agreement.max_abs_diff
            );
        }
        Err(error) => println!("(OpenVINO not run: {error})"),
    }
    println!(
        "FP32 training {:.1} s, QAT {:.1} s; outputs in {}",
        summary.fp32_seconds,
        summary.qat_seconds,
        out.display()
    );
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Qat { config, data, out } => qat(&config, data, &out),
        Command::Eval { ir, data } => {
            let dataset =
                Mnist::load(&data.unwrap_or_else(mnist::default_dir)).map_err(|e| e.to_string())?;
            let logits = openvino_logits(&ir, &dataset.test)?;
            println!(
                "{}: top-1 {:.2} % on the MNIST-10k test split ({} images)",
                ir.display(),
                top1(&logits, &dataset.test.labels),
                dataset.test.len()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
