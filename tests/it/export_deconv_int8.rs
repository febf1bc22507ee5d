//! Quantized transposed convolutions: `QConvTranspose1d` / `QConvTranspose2d` export as
//! ConvolutionBackpropData with an integer weight (per output channel, axis 1 of Burn's
//! `[in, out, k..]` weight) and a FakeQuantize on the input, which OpenVINO runs on its INT8
//! deconvolution kernels; the classifier on top agrees with Burn's fake-quantized forward.

use burn::module::Module;
use burn::nn::conv::{Conv2dConfig, ConvTranspose1dConfig, ConvTranspose2dConfig};
use burn::nn::{LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::Tensor;
use burn_compress::openvino::ExportOptions;
use burn_compress::quant::RangeInit;
use burn_compress::quant::{OverflowFix, QConv2d, QConvTranspose1d, QConvTranspose2d, QLinear};

use crate::common::{calibration_batches, dev, is_int8, mnist, mnist_agreement, runtime_layers};

/// Encoder–decoder classifier: a strided convolution down to 14×14, a transposed convolution
/// back up to 28×28, a transposed 1-D convolution over the rows, a linear head.
#[derive(Module, Debug)]
struct DeconvNet {
    down: QConv2d,
    up: QConvTranspose2d,
    rows: QConvTranspose1d,
    head: QLinear,
}

impl DeconvNet {
    fn new() -> Self {
        dev().seed(53);
        let d = &dev();
        Self {
            down: QConv2d::new(
                Conv2dConfig::new([1, 8], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(d),
            ),
            up: QConvTranspose2d::new(
                ConvTranspose2dConfig::new([8, 4], [2, 2])
                    .with_stride([2, 2])
                    .init(d),
            ),
            rows: QConvTranspose1d::new(
                ConvTranspose1dConfig::new([4 * 28, 16], 3)
                    .with_stride(2)
                    .with_padding(1)
                    .with_padding_out(1)
                    .init(d),
            ),
            head: QLinear::new(LinearConfig::new(16 * 56, 10).init(d)),
        }
    }

    /// `[b, 1, 28, 28]` → `[b, 10]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = relu(self.up.forward(relu(self.down.forward(x))));
        // Channels and rows become the 1-D convolution's channels, columns its length.
        let [b, c, h, w] = x.dims();
        let x = relu(self.rows.forward(x.reshape([b, c * h, w])));
        self.head.forward(x.flatten::<2>(1, 2))
    }
}

#[test]
fn quantized_transposed_convolutions_run_on_int8_kernels_and_agree_with_burn() {
    let data = mnist();
    let batches = calibration_batches(&data.train, 200);
    // Half-range weights everywhere: without VNNI, OpenVINO's u8 × i8 kernels saturate
    // full-range products (the same setting NNCF's `overflow_fix` makes).
    let q = burn_compress::quantize(DeconvNet::new())
        .overflow_fix(OverflowFix::Enable)
        .init_ranges(RangeInit::MinMax, batches, |m, x| {
            m.forward(x);
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("deconv.xml");
    let forward = |m: &DeconvNet, x| m.forward(x);
    let report =
        burn_compress::export(&q, [2, 1, 28, 28], forward, &xml, &ExportOptions::default())
            .unwrap();
    assert_eq!(
        report.quantized_weights(),
        [
            "down.conv.weight",
            "up.conv.weight",
            "rows.conv.weight",
            "head.linear.weight"
        ],
        "{report:?}"
    );
    assert_eq!(report.activation_quantizers.len(), 4, "{report:?}");
    assert!(report.float_inputs.is_empty(), "{report:?}");

    // OpenVINO compiles both transposed convolutions to INT8 deconvolution kernels.
    let layers = runtime_layers(&xml, "64,1,28,28");
    let deconvs: Vec<_> = layers.iter().filter(|l| l[1] == "Deconvolution").collect();
    for l in &deconvs {
        println!("  {:<16} {:<40} {:<4} {}", l[1], l[0], l[2], l[3]);
    }
    assert_eq!(deconvs.len(), 2, "{layers:?}");
    for l in &deconvs {
        assert!(is_int8(l), "{l:?} does not run on an INT8 kernel");
    }

    // Top-1 agreement with Burn's fake-quantized forward over 1,000 test images.
    let c = mnist_agreement(&q, forward, &xml, &data.test.take(1000));
    println!("transposed convolutions, INT8 IR vs Burn: {c:?}");
    assert!(c.top1_agreement >= 0.999, "{c:?}");
}
