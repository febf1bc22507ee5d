//! The reference QAT recipe end to end, as `burn-compress qat` runs it: FP32 training, BatchNorm
//! folding, range initialisation, QAT fine-tuning on MNIST-10k, then export of the fine-tuned
//! model to OpenVINO IR and agreement of the real OpenVINO runtime with Burn.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use burn_compress::export;
use burn_compress::openvino::{compare, ExportOptions, Precision, Runtime};
use burn_compress_recipes::train::predict;
use burn_compress_recipes::{mnist, run_recipe, Mnist, Recipe, ReferenceCnn};

#[test]
fn reference_recipe_keeps_accuracy_and_its_int8_ir_agrees_with_burn() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let recipe = Recipe::from_file(&root.join("configs/mnist_qat.json")).unwrap();
    let data = Mnist::load(&mnist::default_dir()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (models, summary) = run_recipe(&recipe, &data, None, Some(out.path())).unwrap();
    println!("{summary:?}");
    assert!(
        summary.fp32_accuracy > 97.0,
        "FP32 training works: {summary:?}"
    );
    assert!(
        summary.compressed_accuracy >= summary.fp32_accuracy - 0.3,
        "QAT within 0.3 points of FP32: {summary:?}"
    );
    for file in ["fp32.bpk", "compressed.bpk", "summary.json"] {
        assert!(out.path().join(file).is_file(), "{file} written");
    }
    let qat = models.compressed.valid();
    let xml = out.path().join("int8.xml");
    let report = export(
        &qat,
        [1, 1, 28, 28],
        |m: &ReferenceCnn, x: Tensor<4>| m.forward(x),
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (
            report.activation_quantizers.len(),
            report.quantized_weights().len()
        ),
        (4, 4)
    );

    let burn_logits = predict(&qat, &data.test, 250, &Device::flex());
    let mut runtime = Runtime::new().unwrap();
    let mut compiled = runtime.compile(&xml, Precision::F32).unwrap();
    let mut openvino_logits = Vec::new();
    for indices in data.test.batch_indices(250, None) {
        let (images, _) = data.test.batch(&indices, &Device::flex());
        openvino_logits.extend(compiled.infer(&images.into_data()).unwrap().iter::<f32>());
    }
    let agreement = compare(&burn_logits, &openvino_logits, 10);

    // The QAT checkpoint restores the same model into a fresh one with the same quantizers.
    let fresh = ReferenceCnn::new(&Device::flex())
        .fold_batch_norms()
        .unwrap();
    let (probe, _) = data.train.batch(&[0, 1, 2, 3], &Device::flex());
    let fresh = recipe
        .quantization
        .as_ref()
        .unwrap()
        .config
        .builder(fresh)
        .init_ranges(
            recipe
                .quantization
                .as_ref()
                .unwrap()
                .config
                .range_init
                .clone(),
            [probe],
            |m, x| {
                m.forward(x);
            },
        )
        .unwrap();
    let restored = fresh.load_file(out.path().join("compressed.bpk"));
    assert_eq!(
        predict(&restored, &data.test, 250, &Device::flex()),
        burn_logits
    );
    println!(
        "fine-tuned QAT model vs its INT8 IR in OpenVINO on {} test images: top-1 agreement {:.2} %, max logit difference {:.4}",
        agreement.rows,
        agreement.top1_agreement * 100.0,
        agreement.max_abs_diff
    );
    assert_eq!(agreement.rows, data.test.len());
    assert!(agreement.top1_agreement >= 0.999, "{agreement:?}");
}

#[test]
fn recipe_config_errors_name_the_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let good = std::fs::read_to_string(root.join("configs/mnist_qat.json")).unwrap();
    let cases = [
        (
            good.replace("\"seed\"", "\"seeed\""),
            "key `seeed`: unknown key",
        ),
        (
            good.replace("\"batch_size\": 64", "\"batch_size\": 0"),
            "key `batch_size`",
        ),
        (
            good.replacen("\"bits\": 8", "\"bits\": 1", 1),
            "key `compression[0].weights.bits`",
        ),
        (
            good.replace("\"mean_min_max\"", "\"median\""),
            "key `compression[0].initializer.range.type`: unknown value `median`",
        ),
        (
            good.replace("\"reference_cnn\"", "\"resnet50\""),
            "key `model`: unknown model `resnet50`",
        ),
        (
            good.replace(
                "\"algorithm\": \"quantization\"",
                "\"algorithm\": \"binarization\"",
            ),
            "unknown algorithm `binarization`",
        ),
        (
            good.replace("\"seed\": 42", "\"seed\": \"42\""),
            "key `seed`: expected a number",
        ),
        (good[..good.len() - 4].to_string(), "not valid JSON"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&path, text).unwrap();
        let message = Recipe::from_file(&path).unwrap_err().to_string();
        assert!(
            message.contains(expected) && message.contains(&format!("bad{i}.json")),
            "case {i}: {message}"
        );
    }
    let missing = dir.path().join("absent.json");
    let message = Recipe::from_file(&missing).unwrap_err().to_string();
    assert!(message.contains("absent.json"), "{message}");
}

#[test]
fn mnist_split_is_the_documented_one() {
    let data = Mnist::load(&mnist::default_dir()).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (8000, 2000));
    let mut counts = [0usize; 10];
    for &label in data.train.labels.iter().chain(&data.test.labels) {
        counts[label as usize] += 1;
    }
    // Class counts of the MNIST test set (data/mnist-10k/README.md).
    assert_eq!(
        counts,
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), b"not gzip").unwrap();
    let message = Mnist::load(dir.path()).unwrap_err().to_string();
    assert!(message.contains("t10k-images-idx3-ubyte.gz"), "{message}");
}
