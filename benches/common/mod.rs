//! Shared by the benchmarks: OpenVINO throughput of IRs at batch 64, measured interleaved.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::TensorData;
use burn_compress::openvino::{Precision, Runtime};

/// `name` from the environment, parsed, or `default` where it is not set; a value that does
/// not parse stops the benchmark with a message naming the variable (no silent default).
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(value) => value.trim().parse().unwrap_or_else(|_| {
            panic!(
                "{name}={value:?} does not parse as {}",
                std::any::type_name::<T>()
            )
        }),
        Err(_) => default,
    }
}

/// A compiled IR with its batch-64 input.
struct Measured {
    compiled: burn_compress::openvino::CompiledIr,
    input: TensorData,
}

impl Measured {
    fn new(runtime: &mut Runtime, xml: &Path, precision: Precision, image: [usize; 3]) -> Self {
        let mut compiled = runtime.compile(xml, precision).expect("compile");
        let n: usize = 64 * image.iter().product::<usize>();
        let values: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 255) as f32 / 127.0) - 1.0)
            .collect();
        let input = TensorData::new(values, [64, image[0], image[1], image[2]]);
        for _ in 0..5 {
            compiled.infer(&input).expect("infer");
        }
        Self { compiled, input }
    }

    /// Images per second at batch 64 over about `seconds`, one synchronous request.
    fn throughput(&mut self, seconds: f64) -> f64 {
        let start = Instant::now();
        let mut images = 0usize;
        while start.elapsed().as_secs_f64() < seconds {
            self.compiled.infer(&self.input).expect("infer");
            images += 64;
        }
        images as f64 / start.elapsed().as_secs_f64()
    }
}

/// The median of `values`.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Runs every IR of `irs` once per round and precision (compiled once; the order alternates
/// between rounds); prints the ratios `ratios` asks for (numerator, denominator, label), per
/// round and their range and median over all rounds.
pub fn compare(
    title: &str,
    irs: &[(&str, PathBuf)],
    image: [usize; 3],
    ratios: &[(usize, usize, &str)],
) {
    let rounds: usize = env("BENCH_ROUNDS", 5);
    let seconds: f64 = env("BENCH_SECONDS", 2.0);
    let mut runtime = Runtime::new().expect("OpenVINO runtime");
    for (label, precision) in [
        ("defaults", Precision::Default),
        ("f32 hint", Precision::F32),
    ] {
        let mut models: Vec<Measured> = irs
            .iter()
            .map(|(_, xml)| Measured::new(&mut runtime, xml, precision, image))
            .collect();
        let mut per_ratio: Vec<Vec<f64>> = vec![Vec::new(); ratios.len()];
        for round in 1..=rounds {
            let mut speeds = vec![0.0; models.len()];
            let mut order: Vec<usize> = (0..models.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for i in order {
                speeds[i] = models[i].throughput(seconds);
            }
            let listed: Vec<String> = irs
                .iter()
                .zip(&speeds)
                .map(|((name, _), s)| format!("{name} {s:.0}"))
                .collect();
            let ratio_text: Vec<String> = ratios
                .iter()
                .enumerate()
                .map(|(k, (a, b, what))| {
                    let r = speeds[*a] / speeds[*b];
                    per_ratio[k].push(r);
                    format!("{what} {r:.2}x")
                })
                .collect();
            println!(
                "{title}, {label}, round {round}: img/s {} | {}",
                listed.join(", "),
                ratio_text.join(", ")
            );
        }
        for ((_, _, what), values) in ratios.iter().zip(&per_ratio) {
            let low = values.iter().cloned().fold(f64::INFINITY, f64::min);
            let high = values.iter().cloned().fold(0.0, f64::max);
            println!(
                "{title}, {label}: {what} {low:.2}x to {high:.2}x, median {:.2}x over {rounds} \
                 rounds",
                median(values)
            );
        }
    }
}
