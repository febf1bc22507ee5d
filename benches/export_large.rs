//! Export of a model with ~100 M parameters, release: `cargo bench --bench export_large`.
//!
//! Six 4096x4096 Linear layers with ReLUs (100.7 M parameters, 403 MB of f32 weights), exported
//! with a dynamic batch. Reports the export time and the process's peak resident memory during
//! the export (Linux: `VmHWM`, reset through `/proc/self/clear_refs` before the export), over and
//! beside the weights' size. Targets (issue 8): ≤ 3 s, peak ≤ 3x the weights. Env:
//! `EXPORT_LARGE_RUNS` (default 2).

use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use burn_compress::openvino::{export, ExportOptions};

// Only `env` is needed here; the throughput helpers serve the other benchmarks.
#[allow(dead_code)]
mod common;
use common::env;

#[derive(Module, Debug)]
struct WideMlp {
    layers: Vec<Linear>,
}

impl WideMlp {
    fn new(width: usize, depth: usize, device: &Device) -> Self {
        Self {
            layers: (0..depth)
                .map(|_| LinearConfig::new(width, width).init(device))
                .collect(),
        }
    }

    fn forward(&self, mut x: Tensor<2>) -> Tensor<2> {
        for layer in &self.layers {
            x = relu(layer.forward(x));
        }
        x
    }
}

/// Reads every float parameter once, which materialises a lazily initialised one in place.
struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), if the system has it.
fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() {
    let device = Device::flex();
    let (width, depth) = (4096, 6);
    let model = WideMlp::new(width, depth, &device);
    // Burn initialises parameters lazily, and every copy of a still-lazy parameter draws its
    // values again: materialise them once, as a trained or loaded model has them, so that the
    // timings are the export's alone.
    model.visit(&mut Materialize);
    let params = depth * (width * width + width);
    let weights_bytes = (params * 4) as f64;
    println!(
        "model: {depth} x Linear({width}, {width}), {:.1} M parameters, {:.0} MB of weights",
        params as f64 / 1e6,
        weights_bytes / 1e6
    );
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("large.xml");
    if std::env::var_os("EXPORT_LARGE_PHASES").is_some() {
        phases(&model, width, &xml);
    }
    let runs: usize = env("EXPORT_LARGE_RUNS", 2);
    for run in 1..=runs {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let before = status_bytes("VmRSS");
        let start = Instant::now();
        let report = export(
            &model,
            [1, width],
            |m: &WideMlp, x| m.forward(x),
            &xml,
            &ExportOptions::default(),
        )
        .expect("export");
        let seconds = start.elapsed().as_secs_f64();
        let peak = status_bytes("VmHWM");
        let memory = match (before, peak) {
            (Some(before), Some(peak)) => format!(
                "peak RSS {:.0} MB = {:.2}x the weights (before the export {:.0} MB; the export \
                 added {:.2}x the weights)",
                peak as f64 / 1e6,
                peak as f64 / weights_bytes,
                before as f64 / 1e6,
                (peak.saturating_sub(before)) as f64 / weights_bytes
            ),
            _ => "peak memory not available on this system".into(),
        };
        println!(
            "run {run}: export {seconds:.2} s ({} layers, .bin {:.0} MB); {memory}",
            report.layers,
            report.bin_bytes as f64 / 1e6
        );
    }
}

/// Time and memory of each export phase (`EXPORT_LARGE_PHASES=1`), as [`export`] runs them
/// except for its helper thread that syncs the `.bin` during the lowering (here the whole sync is
/// the last phase).
fn phases(model: &WideMlp, width: usize, xml_path: &std::path::Path) {
    use burn_compress::graph::{capture, prepare, CaptureOptions};
    use burn_compress::openvino::write::{bin_temp_file, finish_pair};
    use burn_compress::openvino::{lower_into, to_xml, IrModel};
    let mark = |what: &str, start: Instant| {
        println!(
            "  {what:<8} {:>6.2} s, RSS {:>5.0} MB, peak {:>5.0} MB",
            start.elapsed().as_secs_f64(),
            status_bytes("VmRSS").unwrap_or(0) as f64 / 1e6,
            status_bytes("VmHWM").unwrap_or(0) as f64 / 1e6
        );
        Instant::now()
    };
    let start = Instant::now();
    let mut graph = capture(
        model,
        [1, width],
        |m: &WideMlp, x| m.forward(x),
        &CaptureOptions {
            dynamic_batch: true,
        },
    )
    .unwrap();
    let start = mark("capture", start);
    prepare(&mut graph).unwrap();
    let start = mark("prepare", start);
    // As `export` does it: the blob streams to its temporary file during the lowering.
    let bin_file = bin_temp_file(xml_path).unwrap();
    let sink = bin_file.as_file().try_clone().unwrap();
    let mut ir = lower_into(graph, IrModel::streaming_to("large", sink), &[]).unwrap();
    let start = mark("lower", start);
    let xml = to_xml(&ir).unwrap();
    ir.finish_bin().unwrap();
    let start = mark("xml", start);
    finish_pair(xml_path, &xml, bin_file).unwrap();
    mark("sync", start);
    println!("  ({} bytes of xml)", xml.len());
}
