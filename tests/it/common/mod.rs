//! Shared helpers of the integration tests: deterministic data, Burn and OpenVINO forwards,
//! the OpenVINO check script, and runtime-kernel assertions.

pub mod models;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::module::{Module, Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_compress::openvino::{
    compare, eval, export, Comparison, ExportOptions, Precision, Runtime,
};
use burn_compress_recipes::{Mnist, MnistSplit};

pub fn dev() -> Device {
    Device::flex()
}

/// Deterministic pseudo-random data in [-2, 2).
pub fn data(shape: &[usize], seed: u64) -> TensorData {
    let n: usize = shape.iter().product();
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    TensorData::new(values, shape.to_vec())
}

pub fn burn_forward<M: Module, const D: usize, const O: usize>(
    model: &M,
    input: &TensorData,
    forward: &impl Fn(&M, Tensor<D>) -> Tensor<O>,
) -> Vec<f32> {
    let x = Tensor::<D>::from_data(input.clone(), &dev());
    forward(&model.valid(), x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

pub fn ov_forward(xml: &Path, input: &TensorData) -> Vec<f32> {
    eval(xml, input, Precision::F32)
        .unwrap_or_else(|e| panic!("OpenVINO could not run {}: {e}", xml.display()))
        .try_to_vec::<f32>()
        .unwrap()
}

/// Exports `model` (traced on ids `[2, length]`, dynamic batch), runs `forward` in Burn and the
/// IR in OpenVINO on integer ids `[batch, length]` for each `(batch, seed)` of `batches`, id `k`
/// (row-major) being `id(k, seed)`, and asserts they agree within 1e-4 relative (outputs
/// compared in rows of `classes`). Returns the IR's XML.
pub fn assert_ids_agree<M: Module, const O: usize>(
    label: &str,
    model: &M,
    (length, classes): (usize, usize),
    batches: &[(usize, u64)],
    id: impl Fn(usize, u64) -> i64,
    forward: impl Fn(&M, Tensor<2, Int>) -> Tensor<O>,
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join(format!("{}.xml", label.replace(' ', "_")));
    export(
        model,
        [2, length],
        &forward,
        &xml,
        &ExportOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{label}: export failed: {e}"));
    for &(batch, seed) in batches {
        let ids: Vec<i64> = (0..batch * length).map(|k| id(k, seed)).collect();
        let input = TensorData::new(ids, [batch, length]);
        let reference = forward(model, Tensor::from_data(input.clone(), &dev()))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let c = compare(&reference, &ov_forward(&xml, &input), classes);
        println!("{label}, batch {batch}: {c:?}");
        assert!(
            c.max_rel_diff < 1e-4,
            "{label}, batch {batch}: max relative error {:.3e}",
            c.max_rel_diff
        );
    }
    std::fs::read_to_string(&xml).unwrap()
}

/// Exports with a dynamic batch, runs the IR at the traced batch and at another one, and
/// returns the largest relative error (max |ov - burn| / max |burn|).
pub fn check_fp32<M: Module, const D: usize, const O: usize>(
    name: &str,
    model: &M,
    shape: [usize; D],
    forward: impl Fn(&M, Tensor<D>) -> Tensor<O>,
) -> f32 {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join(format!("{name}.xml"));
    let report = export(model, shape, &forward, &xml, &ExportOptions::default())
        .unwrap_or_else(|e| panic!("{name}: export failed: {e}"));
    let mut worst = 0.0f32;
    for (k, batch) in [shape[0], 3].into_iter().enumerate() {
        let mut s = shape;
        s[0] = batch;
        let input = data(&s, 17 + k as u64);
        let reference = burn_forward(model, &input, &forward);
        let actual = ov_forward(&xml, &input);
        let classes = reference.len() / batch;
        let c = compare(&reference, &actual, classes.max(1));
        worst = worst.max(c.max_rel_diff);
    }
    println!(
        "{name}: {} IR layers, export {:?}, max relative error {worst:.3e}",
        report.layers, report.elapsed
    );
    assert!(worst <= 1e-4, "{name}: max relative error {worst} > 1e-4");
    worst
}

pub fn python() -> PathBuf {
    let path = std::env::var_os("BURN_COMPRESS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        path.exists(),
        "the OpenVINO check needs a Python with the `openvino` package at {} \
         (python3 -m venv .venv && .venv/bin/pip install openvino==2026.4.1), \
         or BURN_COMPRESS_PYTHON pointing at one",
        path.display()
    );
    path
}

/// `scripts/ov_check.py` with `args`; its JSON answer.
pub fn ov_check(args: &[&str]) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ov_check.py");
    let out = Command::new(python())
        .arg(&script)
        .args(args)
        .output()
        .expect("run scripts/ov_check.py");
    assert!(
        out.status.success(),
        "ov_check.py {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ov_check.py prints JSON")
}

pub fn randomize_batch_norm(bn: &mut BatchNorm, seed: u64) {
    let c = bn.gamma.dims()[0];
    let t = |s: u64, lo: f32, hi: f32| {
        let d = data(&[c], s).try_to_vec::<f32>().unwrap();
        let v: Vec<f32> = d.iter().map(|x| lo + (x + 2.0) / 4.0 * (hi - lo)).collect();
        Tensor::<1>::from_data(TensorData::new(v, [c]), &dev())
    };
    bn.gamma = Param::from_tensor(t(seed, 0.5, 1.5));
    bn.beta = Param::from_tensor(t(seed + 1, -0.5, 0.5));
    bn.running_mean = RunningState::new(t(seed + 2, -0.3, 0.3));
    bn.running_var = RunningState::new(t(seed + 3, 0.5, 2.0));
}

pub fn bn(c: usize, seed: u64) -> BatchNorm {
    let mut b = BatchNormConfig::new(c).init(&dev());
    randomize_batch_norm(&mut b, seed);
    b
}

/// The Convolution / MatMul / FullyConnected layers of the runtime model (OpenVINO picks its
/// kernels at compile time): `(name, layerType, runtimePrecision, primitiveType)`.
pub fn runtime_compute_layers(xml: &Path, shape: &str) -> Vec<[String; 4]> {
    let mut out = Vec::new();
    for l in runtime_layers(xml, shape) {
        if matches!(
            l[1].as_str(),
            "Convolution" | "MatMul" | "FullyConnected" | "GroupConvolution"
        ) {
            println!("  {:<16} {:<48} {:<4} {}", l[1], l[0], l[2], l[3]);
            out.push(l);
        }
    }
    out
}

/// Every layer of the runtime model OpenVINO compiles for CPU from `xml` at `shape`: name,
/// layer type, runtime precision, primitive.
pub fn runtime_layers(xml: &Path, shape: &str) -> Vec<[String; 4]> {
    let answer = ov_check(&["runtime", "--xml", xml.to_str().unwrap(), "--shape", shape]);
    answer["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let field = |k: &str| l[k].as_str().unwrap_or("").to_string();
            [
                field("name"),
                field("layerType"),
                field("runtimePrecision"),
                field("primitiveType"),
            ]
        })
        .collect()
}

/// The FakeQuantize layers OpenVINO runs on their own (not fused into a producer): layers of
/// type FakeQuantize, or subgraphs named after one.
pub fn standalone_fake_quantize(xml: &Path, shape: &str) -> Vec<String> {
    runtime_layers(xml, shape)
        .into_iter()
        .filter(|l| l[1] == "FakeQuantize" || (l[1] == "Subgraph" && l[0].contains("FakeQuantize")))
        .map(|l| l[0].clone())
        .collect()
}

pub fn is_int8(layer: &[String; 4]) -> bool {
    matches!(layer[2].as_str(), "u8" | "i8") && layer[3].to_lowercase().ends_with("i8")
}

/// Asserts every Convolution / MatMul / FullyConnected of the runtime model runs on INT8
/// kernels, and that there are `expected` of them (at least that many with `at_least`).
pub fn assert_int8_layers(xml: &Path, shape: &str, expected: usize) {
    assert_int8_compute(xml, shape, expected, false)
}

/// As [`assert_int8_layers`]; with `at_least`, more layers than `expected` are fine (OpenVINO
/// may split one operation into several).
pub fn assert_int8_compute(xml: &Path, shape: &str, expected: usize, at_least: bool) {
    let layers = runtime_compute_layers(xml, shape);
    if at_least {
        assert!(layers.len() >= expected, "{layers:?}");
    } else {
        assert_eq!(layers.len(), expected, "{layers:?}");
    }
    for l in &layers {
        assert!(
            is_int8(l),
            "layer {} ({}) runs {}/{}, not INT8",
            l[0],
            l[1],
            l[2],
            l[3]
        );
    }
}

pub fn mnist() -> Mnist {
    Mnist::load(&burn_compress_recipes::mnist::default_dir()).expect("MNIST-10k in data/mnist-10k")
}

/// Replaces the values of the float parameter at `path` (e.g. `fc1.linear.weight.fake_quant.scale`)
/// with `f(values)`; panics if no parameter has that path.
pub fn set_param<M: Module>(model: M, path: &str, f: impl Fn(Vec<f32>) -> Vec<f32>) -> M {
    struct Setter<'a, F> {
        path: Vec<String>,
        target: &'a str,
        f: F,
        found: bool,
    }
    impl<F: Fn(Vec<f32>) -> Vec<f32>> burn::module::ModuleMapper for Setter<'_, F> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if self.path.join(".") != self.target {
                return param;
            }
            self.found = true;
            param.map(|t| {
                let (shape, device) = (t.shape(), t.device());
                let values = (self.f)(t.into_data().try_to_vec::<f32>().unwrap());
                Tensor::from_data(TensorData::new(values, shape), &device)
            })
        }
    }
    let mut setter = Setter {
        path: Vec::new(),
        target: path,
        f,
        found: false,
    };
    let model = model.map(&mut setter);
    assert!(setter.found, "no parameter at `{path}`");
    model
}

/// The reference CNN after the recipes' FP32 phase (`configs/mnist_qat.json`: 5 epochs, Adam
/// 1e-3, BatchNorm folded), trained once per test run and shared through a checkpoint: a fresh
/// copy on the autodiff flex device.
pub fn trained_fp32() -> burn_compress_recipes::ReferenceCnn {
    use burn_compress_recipes::{train_fp32, Recipe, ReferenceCnn};
    static CHECKPOINT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let path = CHECKPOINT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let recipe = Recipe::from_file(&root.join("configs/mnist_qat.json")).unwrap();
        let device = Device::flex().autodiff();
        let (model, accuracy, _, _) = train_fp32(&recipe, &mnist(), &device);
        println!("shared FP32 reference CNN: {accuracy:.2} %");
        let dir = std::env::temp_dir().join(format!("burn-compress-it-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fp32.bpk");
        model.save_file(&path).unwrap();
        path
    });
    let device = Device::flex().autodiff();
    ReferenceCnn::new(&device)
        .fold_batch_norms()
        .unwrap()
        .load_file(path)
}

/// The 8-bit integer constant the IR at `xml` holds for weight `param` (its `<param>/quantized`
/// Const layer): dimensions as written and values.
pub fn ir_int8_weight(xml: &Path, param: &str) -> (Vec<usize>, Vec<i8>) {
    let text = std::fs::read_to_string(xml).unwrap();
    let name = format!("name=\"{param}/quantized\"");
    let layer = text
        .split("<layer ")
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("no quantized constant for `{param}` in {}", xml.display()));
    let attr = |key: &str| {
        let start = layer.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
        let end = start + layer[start..].find('"').unwrap();
        layer[start..end].to_string()
    };
    assert_eq!(attr("element_type"), "i8", "`{param}` is stored as i8");
    let shape = attr("shape")
        .split(',')
        .map(|d| d.parse().unwrap())
        .collect();
    let (offset, size): (usize, usize) = (
        attr("offset").parse().unwrap(),
        attr("size").parse().unwrap(),
    );
    let bin = std::fs::read(xml.with_extension("bin")).unwrap();
    let values = bin[offset..offset + size]
        .iter()
        .map(|&b| b as i8)
        .collect();
    (shape, values)
}

/// The first `count` images of `split` in batches of 100, for range calibration.
pub fn calibration_batches(split: &MnistSplit, count: usize) -> Vec<Tensor<4>> {
    let calib = split.take(count);
    calib
        .batch_indices(100, None)
        .iter()
        .map(|i| calib.batch(i, &dev()).0)
        .collect()
}

/// Burn's `forward` and the IR at `xml` in OpenVINO over every image of `split` (10 classes).
pub fn mnist_agreement<M>(
    model: &M,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<2>,
    xml: &Path,
    split: &MnistSplit,
) -> Comparison {
    let mut runtime = Runtime::new().unwrap();
    let mut compiled = runtime.compile(xml, Precision::F32).unwrap();
    let (mut reference, mut actual) = (Vec::new(), Vec::new());
    for indices in split.batch_indices(250, None) {
        let (x, _) = split.batch(&indices, &dev());
        let input = x.to_data();
        reference.extend(forward(model, x).into_data().try_to_vec::<f32>().unwrap());
        actual.extend(compiled.infer(&input).unwrap().try_to_vec::<f32>().unwrap());
    }
    compare(&reference, &actual, 10)
}
