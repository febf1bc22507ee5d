//! `burn-compress`: run compression recipes, export to OpenVINO IR, evaluate IRs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress::export;
use burn_compress::openvino::{compare, ExportOptions, Precision, Runtime};
use burn_compress_recipes::train::{predict, progress_bar, top1};
use burn_compress_recipes::{mnist, run_recipe, Mnist, MnistSplit, Recipe, ReferenceCnn};
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
    /// Run a compression recipe: train the reference CNN in FP32, attach what the config asks
    /// (sparsity masks, quantizers), fine-tune, export both models to OpenVINO IR and compare
    /// the compressed IR with the Burn model.
    Run {
        /// Recipe config (JSON), e.g. configs/mnist_magnitude50_int8.json.
        config: PathBuf,
        /// Folder with the MNIST IDX files (default: the repository's data/mnist-10k).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Folder for checkpoints, IRs and summary.json (default: out/<config name>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The reference QAT recipe: `run configs/mnist_qat.json`.
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
        report.activation_quantizers.len(),
        report.quantized_weights().len(),
        report.elapsed.as_secs_f64() * 1e3
    );
    for advice in report.float_input_advice() {
        println!("  warning: {advice}");
    }
    for weight in &report.weights {
        println!(
            "  {:<20} {:>4} {:>8} values, {:>5.1} % zero",
            weight.param,
            weight.element.name(),
            weight.elements,
            100.0 * weight.sparsity()
        );
    }
    Ok(())
}

fn run_config(config: &Path, data: Option<PathBuf>, out: &Path) -> Result<(), String> {
    let recipe = Recipe::from_file(config).map_err(|e| e.to_string())?;
    let dataset =
        Mnist::load(&data.unwrap_or_else(mnist::default_dir)).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let (models, summary) =
        run_recipe(&recipe, &dataset, None, Some(out)).map_err(|e| e.to_string())?;

    let (fp32, compressed) = (models.fp32.valid(), models.compressed.valid());
    export_model(&fp32, &out.join("fp32.xml"), "reference_cnn_fp32")?;
    export_model(
        &compressed,
        &out.join("compressed.xml"),
        "reference_cnn_compressed",
    )?;
    let burn_logits = predict(&compressed, &dataset.test, 250, &Device::flex());
    let openvino = openvino_logits(&out.join("compressed.xml"), &dataset.test);

    println!();
    println!(
        "MNIST-10k (train {} / test {}, split index % 5 == 4 -> test)",
        summary.split.0, summary.split.1
    );
    let bin_bytes = |name: &str| {
        std::fs::metadata(out.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    println!("| stage | top-1 (%) |");
    println!("|---|---|");
    println!("| FP32 (Burn) | {:.2} |", summary.fp32_accuracy);
    if let Some(folded) = summary.folded_accuracy {
        println!("| FP32, BatchNorm folded (Burn) | {folded:.2} |");
    }
    println!(
        "| compression attached, before fine-tuning (Burn) | {:.2} |",
        summary.init_accuracy
    );
    println!(
        "| after fine-tuning (Burn) | {:.2} |",
        summary.compressed_accuracy
    );
    match openvino {
        Ok(logits) => {
            let agreement = compare(&burn_logits, &logits, 10);
            println!(
                "| compressed IR in OpenVINO | {:.2} |",
                top1(&logits, &dataset.test.labels)
            );
            println!(
                "IR vs Burn model: top-1 agreement {:.2} %, max logit difference {:.4}",
                agreement.top1_agreement * 100.0,
                agreement.max_abs_diff
            );
        }
        Err(error) => println!("(OpenVINO not run: {error})"),
    }
    println!();
    print!("{}", summary.stats);
    if let Some(level) = summary.sparsity {
        println!("sparsity of the masked weights: {:.2} %", 100.0 * level);
    }
    if let Some(pruning) = &summary.pruning {
        println!("channel pruning (the saved and exported model is shrunk):");
        print!("{pruning}");
    }
    println!(
        "IR .bin: FP32 {} B, compressed {} B",
        bin_bytes("fp32.bin"),
        bin_bytes("compressed.bin")
    );
    println!(
        "FP32 training {:.1} s, fine-tuning {:.1} s; outputs in {}",
        summary.fp32_seconds,
        summary.finetune_seconds,
        out.display()
    );
    Ok(())
}

/// `out/<config file stem>`.
fn default_out(config: &Path) -> PathBuf {
    let stem = config.file_stem().unwrap_or_default();
    Path::new("out").join(stem)
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Run { config, data, out } => {
            let out = out.unwrap_or_else(|| default_out(&config));
            run_config(&config, data, &out)
        }
        Command::Qat { config, data, out } => run_config(&config, data, &out),
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
