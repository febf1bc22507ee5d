//! FP32 export: every network's IR, run by OpenVINO, matches Burn's forward.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn_compress::openvino::{compare, export, ExportOptions};
use burn_compress_recipes::ReferenceCnn;

use crate::common::models::{reference_cnn, AttentionBlock, Conv1dNet, DepthwiseSeparable, ResNet};
use crate::common::{burn_forward, check_fp32, data, dev, ov_check, ov_forward};

#[test]
fn fp32_reference_cnn_matches_burn() {
    let m = reference_cnn(1);
    check_fp32("reference_cnn", &m, [2, 1, 28, 28], |m, x| m.forward(x));
}

#[test]
fn fp32_residual_network_with_batch_norm_matches_burn() {
    let m = ResNet::new();
    check_fp32("resnet", &m, [2, 3, 16, 16], |m, x| m.forward(x));
}

#[test]
fn fp32_depthwise_separable_network_matches_burn() {
    let m = DepthwiseSeparable::new();
    check_fp32("depthwise", &m, [2, 8, 15, 15], |m, x| m.forward(x));
}

#[test]
fn fp32_attention_block_matches_burn() {
    let m = AttentionBlock::new();
    check_fp32("attention", &m, [2, 5, 16], |m, x| m.forward(x));
}

#[test]
fn fp32_conv1d_network_matches_burn() {
    let m = Conv1dNet::new();
    check_fp32("conv1d", &m, [2, 4, 20], |m, x| m.forward(x));
}

#[test]
fn linear_on_2d_and_3d_inputs_and_matmul_of_activations() {
    #[derive(Module, Debug)]
    struct Two {
        a: Linear,
        b: Linear,
    }
    dev().seed(11);
    let m = Two {
        a: LinearConfig::new(6, 4).init(&dev()),
        b: LinearConfig::new(6, 4).with_bias(false).init(&dev()),
    };
    check_fp32("linear2d", &m, [3, 6], |m, x| {
        m.a.forward(x.clone()) + m.b.forward(x)
    });
    check_fp32("linear3d_matmul", &m, [2, 5, 6], |m, x| {
        let a = m.a.forward(x.clone());
        let b = m.b.forward(x);
        a.matmul(b.swap_dims(1, 2))
    });
}

#[test]
fn static_shape_option_keeps_the_traced_batch() {
    let m = reference_cnn(2);
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("static.xml");
    let options = ExportOptions {
        dynamic_batch: false,
        ..ExportOptions::default()
    };
    export(&m, [4, 1, 28, 28], |m, x| m.forward(x), &xml, &options).unwrap();
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(
        !text.contains("<dim>-1</dim>"),
        "static export has a dynamic dim"
    );
    assert!(text.contains(r#"shape="4,1,28,28""#));
    let input = data(&[4, 1, 28, 28], 5);
    let c = compare(
        &burn_forward(&m, &input, &|m: &ReferenceCnn, x| m.forward(x)),
        &ov_forward(&xml, &input),
        10,
    );
    assert!(c.max_rel_diff <= 1e-4, "{c:?}");
    // The dynamic export, by contrast, declares the batch dynamic.
    let dyn_xml = dir.path().join("dynamic.xml");
    export(
        &m,
        [4, 1, 28, 28],
        |m, x| m.forward(x),
        &dyn_xml,
        &ExportOptions::default(),
    )
    .unwrap();
    let text = std::fs::read_to_string(&dyn_xml).unwrap();
    assert!(text.contains(r#"shape="?,1,28,28""#));
}

#[test]
fn python_check_script_agrees_with_the_rust_runtime() {
    let m = reference_cnn(3);
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("m.xml");
    export(
        &m,
        [2, 1, 28, 28],
        |m, x| m.forward(x),
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    let input = data(&[5, 1, 28, 28], 9);
    let input_path = dir.path().join("x.f32");
    let output_path = dir.path().join("y.f32");
    let bytes: Vec<u8> = input
        .try_to_vec::<f32>()
        .unwrap()
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(&input_path, bytes).unwrap();
    let answer = ov_check(&[
        "infer",
        "--xml",
        xml.to_str().unwrap(),
        "--shape",
        "5,1,28,28",
        "--input",
        input_path.to_str().unwrap(),
        "--output",
        output_path.to_str().unwrap(),
        "--precision",
        "f32",
    ]);
    assert_eq!(answer["shape"], serde_json::json!([5, 10]));
    let py: Vec<f32> = std::fs::read(&output_path)
        .unwrap()
        .chunks(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let rust = ov_forward(&xml, &input);
    let c = compare(&py, &rust, 10);
    assert!(c.max_abs_diff <= 1e-5, "{c:?}");
}

#[test]
fn exported_files_are_readable_and_carry_the_given_names() {
    let m = reference_cnn(3);
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("named.xml");
    let options = ExportOptions {
        input_names: vec!["images".into()],
        output_names: vec!["logits".into()],
        ..ExportOptions::default()
    };
    let forward = |m: &ReferenceCnn, x| m.forward(x);
    let report = export(&m, [1, 1, 28, 28], forward, &xml, &options).unwrap();
    let io = ov_check(&["io", "--xml", xml.to_str().unwrap(), "--shape", "1,1,28,28"]);
    assert_eq!(io["inputs"], serde_json::json!([["images"]]), "{io}");
    assert_eq!(io["outputs"], serde_json::json!([["logits"]]), "{io}");
    // 0644 less the umask (a plain file here gets 0666 less the umask), not owner-only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&report.xml), 0o644 & mode(&plain));
        assert_eq!(mode(&report.bin), 0o644 & mode(&plain));
    }
    let input = data(&[2, 1, 28, 28], 6);
    let c = compare(
        &burn_forward(&m, &input, &forward),
        &ov_forward(&xml, &input),
        10,
    );
    assert!(c.max_rel_diff <= 1e-4, "{c:?}");

    let bad = |input_names: Vec<&str>| {
        let options = ExportOptions {
            input_names: input_names.into_iter().map(String::from).collect(),
            ..ExportOptions::default()
        };
        let xml = dir.path().join("bad.xml");
        let error = export(&m, [1, 1, 28, 28], forward, &xml, &options).unwrap_err();
        assert!(!xml.exists());
        error.to_string()
    };
    assert!(bad(vec!["a", "b"]).contains("`input_names`: 2 names given, the model has 1"));
    assert!(bad(vec![" "]).contains("empty"));
}
