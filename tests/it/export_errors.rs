//! Export errors name the operation and module at fault and leave no files behind.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::Tensor;
use burn_compress::openvino::{export, ExportError, ExportOptions};

use crate::common::dev;
use crate::common::models::Conv1dNet;

#[derive(Module, Debug)]
struct Odd {
    body: Linear,
    head: Linear,
}

/// Exports a two-layer model with `forward`, which must fail; asserts nothing was written and
/// returns the error's message.
fn refused(seed: u64, forward: impl Fn(&Odd, Tensor<2>) -> Tensor<2>) -> String {
    dev().seed(seed);
    let m = Odd {
        body: LinearConfig::new(4, 4).init(&dev()),
        head: LinearConfig::new(4, 3).init(&dev()),
    };
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("odd.xml");
    let err = export(&m, [2, 4], forward, &xml, &ExportOptions::default()).unwrap_err();
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files left behind"
    );
    err.to_string()
}

#[test]
fn unsupported_operation_is_named_with_its_module_and_nothing_is_written() {
    // A cumulative product has no counterpart in OpenVINO's opsets.
    let message = refused(13, |m, x| {
        m.head.forward(relu(m.body.forward(x)).cumprod(1))
    });
    assert!(message.contains("CumProd"), "{message}");
    assert!(
        message.contains("`head`") || message.contains("`body`"),
        "{message}"
    );
}

#[test]
fn a_path_without_xml_extension_is_refused_without_writing() {
    let m = Conv1dNet::new();
    let dir = tempfile::tempdir().unwrap();
    let err = export(
        &m,
        [1, 4, 20],
        |m, x| m.forward(x),
        dir.path().join("m.txt"),
        &ExportOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ExportError::Io { .. }), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_forward_that_records_other_operations_at_every_batch_size_is_refused() {
    // An extra layer at even batch sizes: no two neighbouring batch sizes trace alike.
    let message = refused(17, |m, x| {
        let [batch, _] = x.dims();
        let x = relu(m.body.forward(x));
        let x = if batch % 2 == 0 { m.body.forward(x) } else { x };
        m.head.forward(x)
    });
    assert!(message.contains("batch size"), "{message}");
}
