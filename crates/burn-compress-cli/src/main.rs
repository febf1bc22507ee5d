//! `burn-compress`: run compression recipes, export to OpenVINO IR, evaluate IRs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod report;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use burn_compress::export;
use burn_compress::openvino::{compare, ExportOptions, Precision, Runtime};
use burn_compress::quant::load_stock_checkpoint;
use burn_compress::shared::ModelStats;
use burn_compress_config::{Algorithm, CompressionConfig};
use burn_compress_recipes::train::{predict, progress_bar, top1};
use burn_compress_recipes::{
    load_compressed, mnist, run_recipe_with, Mnist, MnistSplit, Recipe, ReferenceCnn, RunOptions,
};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "burn-compress",
    version,
    about = "Training-time model compression for Burn: QAT, sparsity and filter pruning from \
             NNCF-style JSON configs, exported to OpenVINO IR",
    after_help = "Exit status: 0 on success, 1 on any error (the message names the file, \
                  config key or layer at fault; no partial output is left behind)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the recipe trains.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum DeviceChoice {
    /// Burn's pure-Rust CPU backend (default).
    Flex,
    /// Burn's ndarray CPU backend (deprecated in Burn 0.22; needs the `ndarray` feature).
    Ndarray,
    /// The best adapter wgpu finds: a GPU where there is one (needs the `wgpu` feature; set
    /// `CUBECL_WGPU_DEFAULT_DEVICE` to pick another, e.g. `Cpu` for Mesa's lavapipe).
    Wgpu,
}

impl DeviceChoice {
    fn device(self) -> Result<Device, String> {
        match self {
            DeviceChoice::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            DeviceChoice::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[allow(unreachable_patterns)]
            other => Err(missing_backend(other)),
        }
    }
}

/// The error for a device whose backend this binary was built without.
fn missing_backend(choice: DeviceChoice) -> String {
    let name = format!("{choice:?}").to_lowercase();
    format!(
        "`--device {name}`: this binary is built without the {name} backend; build it with \
         `cargo build --release -p burn-compress-cli --features {name}`"
    )
}

/// Where a recipe run reads and writes, and how it trains.
#[derive(Args)]
struct RunArgs {
    /// Folder with the MNIST IDX files [default: the config's `dataset_dir`, else the
    /// repository's data/mnist-10k].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Folder for checkpoints, IRs, summary.json and the report [default: the config's
    /// `log_dir`, else out/<config name>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Device to train on.
    #[arg(long, value_enum, default_value = "flex")]
    device: DeviceChoice,
    /// Continue a killed run from its last complete epoch (checkpoints in <out>/checkpoints);
    /// it ends with the weights an uninterrupted run would have.
    #[arg(long)]
    resume: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run a recipe config (NNCF 2.x JSON plus recipe keys, see configs/): train the reference
    /// CNN in FP32 or load `pretrained`, attach what `compression` lists, fine-tune, shrink a
    /// pruned model, export the FP32 and compressed models to OpenVINO IR, run the compressed
    /// IR in OpenVINO and print a summary.
    Run {
        /// Recipe config (JSON), e.g. configs/mnist_magnitude50_int8.json.
        config: PathBuf,
        #[command(flatten)]
        options: RunArgs,
    },
    /// The reference QAT recipe: `run configs/mnist_qat.json`.
    Qat {
        /// Recipe config (JSON).
        #[arg(long, default_value = "configs/mnist_qat.json")]
        config: PathBuf,
        #[command(flatten)]
        options: RunArgs,
    },
    /// Read a config and print what it asks for: each algorithm with its settings as
    /// burn-compress applies them, and the keys that have no effect. Nothing is trained.
    Check {
        /// Config (JSON).
        config: PathBuf,
    },
    /// Top-1 accuracy of an exported MNIST classifier IR on the test split, run by OpenVINO.
    /// Top-1 accuracy on the MNIST-10k test split of an exported IR (`.xml`, run by OpenVINO)
    /// or of the compressed Burn checkpoint a recipe run saved (give the recipe's `.json`).
    Eval {
        /// An IR's `.xml` file, or a recipe config whose run's checkpoint to evaluate.
        model: PathBuf,
        #[command(flatten)]
        run: SavedRun,
    },
    /// Export the compressed Burn checkpoint a recipe run saved to an OpenVINO IR.
    Export {
        /// The recipe config of the run.
        config: PathBuf,
        /// Where to write the IR [default: <out>/compressed.xml].
        #[arg(long)]
        xml: Option<PathBuf>,
        #[command(flatten)]
        run: SavedRun,
    },
    /// Per-layer shapes, sparsity and quantizers of the compressed checkpoint a recipe run
    /// saved, and its parameter count.
    Stats {
        /// The recipe config of the run.
        config: PathBuf,
        #[command(flatten)]
        run: SavedRun,
    },
}

/// Where a finished recipe run is.
#[derive(Args)]
struct SavedRun {
    /// Folder with the MNIST IDX files [default: the config's `dataset_dir`, else the
    /// repository's data/mnist-10k].
    #[arg(long)]
    data: Option<PathBuf>,
    /// The run's output folder [default: the config's `log_dir`, else out/<config name>].
    #[arg(long)]
    out: Option<PathBuf>,
}

impl SavedRun {
    /// The recipe, its dataset and the compressed model the run saved.
    fn load(&self, config: &Path) -> Result<(Recipe, Mnist, ReferenceCnn, PathBuf), String> {
        let recipe = Recipe::from_file(config).map_err(|e| e.to_string())?;
        let data = self
            .data
            .clone()
            .or_else(|| recipe.dataset_dir.clone())
            .unwrap_or_else(mnist::default_dir);
        let dataset = Mnist::load(&data).map_err(|e| e.to_string())?;
        let out = self
            .out
            .clone()
            .or_else(|| recipe.log_dir.clone())
            .unwrap_or_else(|| default_out(config));
        let model =
            load_compressed(&recipe, &dataset, &out, &Device::flex()).map_err(|e| e.to_string())?;
        Ok((recipe, dataset, model, out))
    }
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

fn run_config(config: &Path, args: RunArgs) -> Result<(), String> {
    let RunArgs {
        data,
        out,
        device,
        resume,
    } = args;
    let recipe = Recipe::from_file(config).map_err(|e| e.to_string())?;
    let device = device.device()?;
    let data = data
        .or_else(|| recipe.dataset_dir.clone())
        .unwrap_or_else(mnist::default_dir);
    let out = out
        .or_else(|| recipe.log_dir.clone())
        .unwrap_or_else(|| default_out(config));
    let out = out.as_path();
    let dataset = Mnist::load(&data).map_err(|e| e.to_string())?;
    let fp32 = match &recipe.pretrained {
        Some(checkpoint) => {
            let model = load_stock_checkpoint(ReferenceCnn::new(&device), checkpoint)
                .map_err(|e| e.to_string())?;
            println!("FP32 weights from {}", checkpoint.display());
            Some(if recipe.fold_batch_norm {
                model.fold_batch_norms().map_err(|e| e.to_string())?
            } else {
                model
            })
        }
        None => None,
    };
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
    let probe = out.join(".burn-compress-write-test");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| format!("cannot write into `{}`: {e}", out.display()))?;
    let options = RunOptions {
        device: device.clone(),
        out_dir: Some(out.to_path_buf()),
        resume,
        stop_after_steps: None,
    };
    let (models, summary) =
        run_recipe_with(&recipe, &dataset, fp32, &options).map_err(|e| e.to_string())?;

    let (fp32, compressed) = (models.fp32.valid(), models.compressed.valid());
    export_model(&fp32, &out.join("fp32.xml"), "reference_cnn_fp32")?;
    export_model(
        &compressed,
        &out.join("compressed.xml"),
        "reference_cnn_compressed",
    )?;
    let burn_logits = predict(&compressed, &dataset.test, 250, &device);
    let openvino = openvino_logits(&out.join("compressed.xml"), &dataset.test);

    let openvino = openvino.map(|logits| {
        let agreement = compare(&burn_logits, &logits, 10);
        report::OpenVinoRun {
            accuracy: top1(&logits, &dataset.test.labels),
            agreement: agreement.top1_agreement,
            max_abs_diff: agreement.max_abs_diff,
        }
    });
    let summary_text = report::summary_markdown(&summary, &openvino, out);
    println!();
    print!("{summary_text}");
    report::write(config, &recipe, &summary, &summary_text, out)?;
    println!("report: {}", out.join("report.md").display());
    Ok(())
}

/// `out/<config file stem>`.
fn default_out(config: &Path) -> PathBuf {
    let stem = config.file_stem().unwrap_or_default();
    Path::new("out").join(stem)
}

/// Prints what `config` asks for, as burn-compress reads it.
fn check_config(config: &Path) -> Result<(), String> {
    let parsed = CompressionConfig::from_file(config).map_err(|e| e.to_string())?;
    println!("{}: valid", config.display());
    for input in &parsed.input_info {
        println!("input {:?} ({})", input.sample_size, input.element);
    }
    println!("target_device {}", parsed.target_device);
    for algorithm in &parsed.algorithms {
        match algorithm {
            Algorithm::Quantization(q) => println!(
                "quantization: weights {:?}\n  activations {:?}\n  range {:?} on {} samples, \
                 overflow fix {:?}, ignored {:?}",
                q.config.weights,
                q.config.activations,
                q.config.range_init,
                q.init_samples,
                q.config.overflow_fix,
                q.config.ignored_scopes
            ),
            Algorithm::Sparsity(s) => {
                println!("sparsity: {:?}, ignored {:?}", s.method, s.ignored_scopes)
            }
            Algorithm::Pruning(p) => {
                println!(
                    "filter pruning: {:?}, ignored {:?}",
                    p.pruning, p.ignored_scopes
                )
            }
        }
    }
    let training = &parsed.training;
    println!(
        "training: {} epochs, batch {}, {:?} at {} ({:?}), seed {}",
        training.epochs,
        training.batch_size,
        training.optimizer.kind,
        training.optimizer.base_lr,
        training.optimizer.schedule,
        training.seed
    );
    for key in &training.without_effect {
        println!("note: `{key}` has no effect here");
    }
    Ok(())
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Run { config, options } | Command::Qat { config, options } => {
            run_config(&config, options)
        }
        Command::Check { config } => check_config(&config),
        Command::Eval { model, run } => {
            if model.extension().is_some_and(|e| e == "xml") {
                let data = run.data.unwrap_or_else(mnist::default_dir);
                let dataset = Mnist::load(&data).map_err(|e| e.to_string())?;
                let logits = openvino_logits(&model, &dataset.test)?;
                println!(
                    "{}: top-1 {:.2} % on the MNIST-10k test split ({} images), OpenVINO",
                    model.display(),
                    top1(&logits, &dataset.test.labels),
                    dataset.test.len()
                );
            } else {
                let (_, dataset, compressed, out) = run.load(&model)?;
                let logits = predict(&compressed, &dataset.test, 250, &Device::flex());
                println!(
                    "{}: top-1 {:.2} % on the MNIST-10k test split ({} images), Burn",
                    out.join("compressed.bpk").display(),
                    top1(&logits, &dataset.test.labels),
                    dataset.test.len()
                );
            }
            Ok(())
        }
        Command::Export { config, xml, run } => {
            let (_, _, compressed, out) = run.load(&config)?;
            let xml = xml.unwrap_or_else(|| out.join("compressed.xml"));
            export_model(&compressed, &xml, "reference_cnn_compressed")
        }
        Command::Stats { config, run } => {
            let (_, _, compressed, out) = run.load(&config)?;
            println!("{}:", out.join("compressed.bpk").display());
            print!("{}", ModelStats::of(&compressed));
            Ok(())
        }
    }
}

/// mimalloc (or the platform's allocator with `BURN_COMPRESS_ALLOCATOR=system`): steadier and
/// cheaper training steps than glibc's `malloc` (see the README).
#[global_allocator]
static ALLOCATOR: burn_compress_recipes::TrainingAllocator =
    burn_compress_recipes::TrainingAllocator;

fn main() -> ExitCode {
    match burn_compress_recipes::check_allocator_var().and_then(|()| run(Cli::parse())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
