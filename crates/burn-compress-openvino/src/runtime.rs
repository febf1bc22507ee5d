//! Running an exported IR with OpenVINO from Rust through the `openvino` crate (runtime
//! linking: the C library is found when first needed, not at build time).

use std::path::{Path, PathBuf};

use burn::tensor::TensorData;
use openvino::{Core, DeviceType, ElementType, RwPropertyKey, Shape, Tensor};

use crate::error::{ExportError, Result};

/// Locates `libopenvino_c`: `$OPENVINO_LIB` (file or directory), then the `openvino` pip wheel
/// in `$VIRTUAL_ENV`, `./.venv` or the workspace's `.venv`, then OpenVINO's standard locations.
pub fn find_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OPENVINO_LIB").map(PathBuf::from) {
        return if p.is_dir() { lib_in(&p) } else { Some(p) };
    }
    let mut venvs: Vec<PathBuf> = Vec::new();
    if let Some(v) = std::env::var_os("VIRTUAL_ENV") {
        venvs.push(PathBuf::from(v));
    }
    venvs.push(PathBuf::from(".venv"));
    venvs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv"));
    for venv in venvs {
        let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
            continue;
        };
        for entry in entries.flatten() {
            let libs = entry.path().join("site-packages/openvino/libs");
            if let Some(found) = lib_in(&libs) {
                return Some(found);
            }
        }
    }
    openvino_sys::library::find()
}

fn lib_in(dir: &Path) -> Option<PathBuf> {
    let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libopenvino_c.so")
                    || n == "openvino_c.dll"
                    || n.starts_with("libopenvino_c.") && n.ends_with(".dylib")
            })
        })
        .collect();
    hits.sort();
    hits.pop()
}

fn runtime_err(action: &str) -> impl Fn(openvino::InferenceError) -> ExportError + '_ {
    move |e| ExportError::Runtime {
        action: action.to_string(),
        message: e.to_string(),
    }
}

/// Numerical precision OpenVINO's CPU plugin computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Force f32 (compare with Burn this way): no bf16, and no dynamic quantization of the
    /// activations of layers whose weights are stored as integers without a FakeQuantize on
    /// their input (OpenVINO's CPU plugin does that by default on CPUs with VNNI or AMX,
    /// groups of 32, about 1e-3 relative off).
    F32,
    /// The plugin's default (bf16 on CPUs with AMX/AVX512-BF16; INT8 layers stay INT8).
    Default,
}

/// An OpenVINO core bound to the CPU device.
pub struct Runtime {
    core: Core,
}

impl Runtime {
    /// Loads the OpenVINO library (see [`find_library`]) and creates a core.
    pub fn new() -> Result<Self> {
        let lib = find_library().ok_or_else(|| {
            ExportError::Library(
                "libopenvino_c not found; set OPENVINO_LIB to it (for example \
                 .venv/lib/python3.11/site-packages/openvino/libs/libopenvino_c.so.2641) or \
                 `pip install openvino` into ./.venv"
                    .into(),
            )
        })?;
        openvino_sys::library::load_from(&lib)
            .map_err(|e| ExportError::Library(format!("{}: {e}", lib.display())))?;
        let core = Core::new().map_err(|e| ExportError::Library(e.to_string()))?;
        Ok(Self { core })
    }

    /// Reads and compiles an IR for the CPU. [`Precision::F32`] is a setting of this core's CPU
    /// device: later compilations on the same `Runtime` keep it.
    pub fn compile(&mut self, xml: &Path, precision: Precision) -> Result<CompiledIr> {
        if precision == Precision::F32 {
            let no_dynamic_quantization =
                RwPropertyKey::Other("DYNAMIC_QUANTIZATION_GROUP_SIZE".into());
            self.core
                .set_properties(
                    &DeviceType::CPU,
                    [
                        (RwPropertyKey::HintInferencePrecision, "f32"),
                        (no_dynamic_quantization, "0"),
                    ],
                )
                .map_err(runtime_err("set the inference precision"))?;
        }
        let bin = crate::write::bin_path(xml);
        let model = self
            .core
            .read_model_from_file(&xml.to_string_lossy(), &bin.to_string_lossy())
            .map_err(runtime_err("read the IR"))?;
        let compiled = self
            .core
            .compile_model(&model, DeviceType::CPU)
            .map_err(runtime_err("compile the IR"))?;
        Ok(CompiledIr { compiled })
    }
}

/// A compiled IR ready to run.
pub struct CompiledIr {
    compiled: openvino::CompiledModel,
}

impl CompiledIr {
    /// Runs one inference on an f32 input; returns the first output as f32 data.
    pub fn infer(&mut self, input: &TensorData) -> Result<TensorData> {
        let dims: Vec<i64> = input.shape().iter().map(|&d| d as i64).collect();
        let shape = Shape::new(&dims).map_err(runtime_err("make the input shape"))?;
        // Integer data (ids for an embedding) goes in as i64, the IR's integer input type.
        let tensor = if input.dtype().is_float() {
            filled_tensor(&shape, ElementType::F32, input.iter::<f32>())?
        } else {
            filled_tensor(&shape, ElementType::I64, input.iter::<i64>())?
        };
        let mut request = self
            .compiled
            .create_infer_request()
            .map_err(runtime_err("create an infer request"))?;
        request
            .set_input_tensor(&tensor)
            .map_err(runtime_err("set the input"))?;
        request.infer().map_err(runtime_err("infer"))?;
        let out = request
            .get_output_tensor_by_index(0)
            .map_err(runtime_err("get the output"))?;
        let out_dims: Vec<usize> = out
            .get_shape()
            .map_err(runtime_err("read the output shape"))?
            .get_dimensions()
            .iter()
            .map(|&d| d as usize)
            .collect();
        let data = out
            .get_data::<f32>()
            .map_err(runtime_err("read the output"))?
            .to_vec();
        Ok(TensorData::new(data, out_dims))
    }

    /// The underlying compiled model (for properties and the runtime model).
    pub fn compiled(&self) -> &openvino::CompiledModel {
        &self.compiled
    }
}

/// Runs the IR at `xml` once on `input` with OpenVINO's CPU plugin and returns the output.
pub fn eval(xml: impl AsRef<Path>, input: &TensorData, precision: Precision) -> Result<TensorData> {
    let mut runtime = Runtime::new()?;
    runtime.compile(xml.as_ref(), precision)?.infer(input)
}

/// An OpenVINO tensor of `shape` and `element` type holding `values`.
fn filled_tensor<T: Copy>(
    shape: &Shape,
    element: ElementType,
    values: impl Iterator<Item = T>,
) -> Result<Tensor> {
    let mut tensor = Tensor::new(element, shape).map_err(runtime_err("make the input tensor"))?;
    let data = tensor
        .get_data_mut::<T>()
        .map_err(runtime_err("fill the input tensor"))?;
    for (slot, value) in data.iter_mut().zip(values) {
        *slot = value;
    }
    Ok(tensor)
}
