//! `burn-compress`: run compression recipes and inspect their results.

use std::path::PathBuf;
use std::process::ExitCode;

use burn_compress_recipes::{mnist, run_qat, Mnist, QatRecipe};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "burn-compress", version, about = "Training-time model compression for Burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train the reference CNN in FP32, attach quantizers, fine-tune (QAT), print a summary.
    Qat {
        /// Recipe config (JSON).
        #[arg(long, default_value = "configs/mnist_qat.json")]
        config: PathBuf,
        /// Folder with the MNIST IDX files.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Folder for checkpoints and summary.json.
        #[arg(long, default_value = "out/mnist_qat")]
        out: PathBuf,
    },
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Qat { config, data, out } => {
            let recipe = QatRecipe::from_file(&config).map_err(|e| e.to_string())?;
            let data_dir = data.unwrap_or_else(mnist::default_dir);
            let dataset = Mnist::load(&data_dir).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&out)
                .map_err(|e| format!("cannot create `{}`: {e}", out.display()))?;
            let (_, summary) = run_qat(&recipe, &dataset, Some(&out)).map_err(|e| e.to_string())?;
            println!();
            println!("MNIST-10k (train {} / test {}, split index % 5 == 4 -> test)", summary.split.0, summary.split.1);
            println!("| stage | top-1 (%) |");
            println!("|---|---|");
            println!("| FP32 | {:.2} |", summary.fp32_accuracy);
            if let Some(folded) = summary.folded_accuracy {
                println!("| FP32, BatchNorm folded | {folded:.2} |");
            }
            println!("| INT8 after range init | {:.2} |", summary.init_accuracy);
            println!("| INT8 after QAT | {:.2} |", summary.qat_accuracy);
            println!("FP32 training {:.1} s, QAT {:.1} s; outputs in {}", summary.fp32_seconds, summary.qat_seconds, out.display());
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
