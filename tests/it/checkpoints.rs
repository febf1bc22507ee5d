//! A checkpoint saved from a user's stock-layer model loads into the same model with quantizer
//! wrappers (`load_stock_checkpoint`), gives the same FP32 outputs, and then quantizes; a
//! checkpoint that does not fit is refused with the parameters named.

use burn::module::Module;
use burn::nn::LinearConfig;
use burn::tensor::Tensor;
use burn_compress::prelude::*;
use burn_compress_recipes::ReferenceCnn;

use crate::common::models::StockCnn;
use crate::common::{burn_forward, data, dev};

#[test]
fn stock_checkpoint_loads_into_wrapped_model() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stock.bpk");
    let stock = StockCnn::new(7);
    let input = data(&[4, 1, 28, 28], 3);
    let expected = burn_forward(&stock, &input, &|m: &StockCnn, x| m.forward(x));
    stock.save_file(&file).unwrap();

    // Plainly, the record does not fit: the wrapped paths and the quantizer slots differ.
    let plain = ReferenceCnn::new(&dev()).try_load_file(&file);
    assert!(
        plain.is_err(),
        "a stock checkpoint loaded without remapping"
    );

    let wrapped = load_stock_checkpoint(ReferenceCnn::new(&dev()), &file).unwrap();
    let got = burn_forward(&wrapped, &input, &|m: &ReferenceCnn, x| m.forward(x));
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() <= 1e-6 * e.abs().max(1.0), "{g} vs {e}");
    }

    // The loaded model quantizes as usual, and its own checkpoint loads back the same way.
    let calibration = vec![Tensor::<4>::from_data(input.clone(), &dev())];
    let quantized = quantize(wrapped)
        .weights(QuantSpec::int8_weights())
        .activations(QuantSpec::int8_activations())
        .init_ranges(RangeInit::MinMax, calibration, |m, x| {
            m.forward(x);
        })
        .unwrap();
    assert!(quantized.conv1.input_quant.quantizer().is_some());
    let again = load_stock_checkpoint(ReferenceCnn::new(&dev()), &file).unwrap();
    let wrapped_file = dir.path().join("wrapped.bpk");
    again.save_file(&wrapped_file).unwrap();
    let reloaded = load_stock_checkpoint(ReferenceCnn::new(&dev()), &wrapped_file).unwrap();
    assert_eq!(
        burn_forward(&reloaded, &input, &|m: &ReferenceCnn, x| m.forward(x)),
        got
    );
}

#[test]
fn checkpoint_that_does_not_fit_is_refused_naming_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stock.bpk");
    let mut stock = StockCnn::new(7);
    stock.fc2 = LinearConfig::new(128, 12).init(&dev());
    stock.save_file(&file).unwrap();
    let error = load_stock_checkpoint(ReferenceCnn::new(&dev()), &file)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("stock.bpk") && error.contains("fc2"),
        "{error}"
    );

    let mut stock = StockCnn::new(7);
    stock.bn2 = None;
    stock.save_file(&file).unwrap();
    let error = load_stock_checkpoint(ReferenceCnn::new(&dev()), &file)
        .unwrap_err()
        .to_string();
    assert!(error.contains("bn2.gamma"), "{error}");

    let missing = dir.path().join("absent.bpk");
    let error = load_stock_checkpoint(ReferenceCnn::new(&dev()), &missing)
        .unwrap_err()
        .to_string();
    assert!(error.contains("absent.bpk"), "{error}");
}
