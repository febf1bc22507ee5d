//! Export a model to OpenVINO IR and run the IR from Rust with OpenVINO's runtime, next to
//! Burn's own forward. The runtime library comes from `./.venv` (made by `scripts/run.sh` or
//! `scripts/test.sh`) or `OPENVINO_LIB`.
//!
//! `cargo run --example export_and_run`

mod common;

use burn::tensor::Device;
use burn_compress::openvino::{compare, Precision, Runtime};
use burn_compress::prelude::*;

use common::{batch, Net};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex();
    let calibration: Vec<_> = (0..4).map(|i| batch(16, i, &device).0).collect();
    let model =
        quantize(Net::new(&device)).init_ranges(RangeInit::MeanMinMax, calibration, |m, x| {
            m.forward(x);
        })?;

    let xml = std::env::temp_dir().join("burn-compress-examples/run.xml");
    std::fs::create_dir_all(xml.parent().expect("a folder"))?;
    let options = ExportOptions {
        input_names: vec!["images".into()],
        output_names: vec!["logits".into()],
        ..ExportOptions::default()
    };
    export(&model, [1, 3, 16, 16], |m, x| m.forward(x), &xml, &options)?;

    let (images, _) = batch(8, 42, &device);
    let burn: Vec<f32> = model.forward(images.clone()).into_data().iter().collect();
    let mut runtime = Runtime::new()?;
    let mut compiled = runtime.compile(&xml, Precision::F32)?;
    let openvino: Vec<f32> = compiled.infer(&images.into_data())?.iter().collect();
    let agreement = compare(&burn, &openvino, 10);
    println!(
        "OpenVINO vs Burn on 8 images: top-1 agreement {:.1} %, max logit difference {:.4}",
        100.0 * agreement.top1_agreement,
        agreement.max_abs_diff
    );
    Ok(())
}
