//! Integer and boolean tensors inside the forward: attention masks built from the input ids and
//! from the sequence length (multi-head attention, a transformer encoder), positions from
//! `arange`, sinusoidal and rotary position encodings, integer arithmetic and boolean logic,
//! each exported and run by OpenVINO against Burn's forward (FP32, 1e-4 relative).

use burn::module::Module;
use burn::nn::attention::{
    generate_autoregressive_mask, MhaInput, MultiHeadAttention, MultiHeadAttentionConfig,
};
use burn::nn::transformer::{
    TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput,
};
use burn::nn::{
    Embedding, EmbeddingConfig, Linear, LinearConfig, PositionalEncoding, PositionalEncodingConfig,
    RotaryEncoding, RotaryEncodingConfig,
};
use burn::tensor::{Bool, Int, Tensor};

use crate::common::{assert_ids_agree, dev};

/// A one-layer causal language model: token and position embeddings, self-attention that
/// masks padding (id 0) and the future, and a head over the vocabulary.
#[derive(Module, Debug)]
struct CausalLm {
    tokens: Embedding,
    positions: Embedding,
    attention: MultiHeadAttention,
    head: Linear,
}

impl CausalLm {
    fn new(vocab: usize, length: usize, width: usize) -> Self {
        let d = dev();
        Self {
            tokens: EmbeddingConfig::new(vocab, width).init(&d),
            positions: EmbeddingConfig::new(length, width).init(&d),
            attention: MultiHeadAttentionConfig::new(width, 2)
                .with_dropout(0.0)
                .init(&d),
            head: LinearConfig::new(width, vocab).init(&d),
        }
    }

    fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, length] = ids.dims();
        let device = ids.device();
        let padding = ids.clone().equal_elem(0);
        let future = generate_autoregressive_mask(batch, length, &device);
        let positions = Tensor::<1, Int>::arange(0..length as i64, &device).reshape([1, length]);
        let x = self.tokens.forward(ids) + self.positions.forward(positions);
        let input = MhaInput::self_attn(x).mask_pad(padding).mask_attn(future);
        self.head.forward(self.attention.forward(input).context)
    }
}

#[test]
fn attention_masks_from_ids_and_length_match_burn() {
    dev().seed(71);
    let (vocab, length) = (20, 6);
    let model = CausalLm::new(vocab, length, 8);
    // The traced batch and another one; trailing padding (id 0) in some rows.
    let id = |k: usize, seed: u64| {
        let (row, column) = (k / length, k % length);
        match column + row % 3 >= length {
            true => 0,
            false => (((k as u64 * 7919 + seed * 104_729) % (vocab as u64 - 1)) + 1) as i64,
        }
    };
    let forward = |m: &CausalLm, ids| m.forward(ids);
    let batches = [(2, 3), (5, 4)];
    let text = assert_ids_agree("causal LM", &model, (length, vocab), &batches, id, forward);
    assert!(
        text.contains("element_type=\"boolean\""),
        "the masks stay boolean"
    );
}

/// Integer arithmetic on the ids, comparisons and boolean logic, an integer-to-float cast and a
/// boolean-to-float one, `select` and `repeat_dim` on floats.
#[derive(Module, Debug)]
struct IdArithmetic {
    embed: Embedding,
    head: Linear,
}

impl IdArithmetic {
    fn forward(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let [_, length] = ids.dims();
        let device = ids.device();
        // Shifted, scaled and clamped ids stay in the table.
        let shifted = ((ids.clone() * 3 + 2) - ids.clone()).clamp(0, 29);
        let even = shifted
            .clone()
            .lower_elem(15)
            .bool_and(ids.clone().greater_elem(2));
        let either = even.clone().bool_or(ids.clone().equal_elem(7)).bool_not();
        let x = self.embed.forward(shifted.clone());
        let weights = either.float() + ids.float().mul_scalar(0.01) + even.int().float();
        let x = x * weights.unsqueeze_dim::<3>(2);
        // Reversed columns by index, repeated features.
        let reversed = Tensor::<1, Int>::arange(0..length as i64, &device).flip([0]);
        let x = x.select(1, reversed).repeat_dim(2, 2);
        self.head.forward(x.mean_dim(1).squeeze_dim::<2>(1))
    }
}

#[test]
fn integer_arithmetic_and_boolean_logic_match_burn() {
    let d = dev();
    d.seed(73);
    let model = IdArithmetic {
        embed: EmbeddingConfig::new(30, 4).init(&d),
        head: LinearConfig::new(8, 3).init(&d),
    };
    let id = |k: usize, seed: u64| ((k as u64 * 7919 + seed * 104_729) % 14) as i64;
    let forward = |m: &IdArithmetic, ids| m.forward(ids);
    assert_ids_agree(
        "id arithmetic",
        &model,
        (5, 3),
        &[(2, 1), (4, 2)],
        id,
        forward,
    );
}

/// A transformer encoder over token embeddings with sinusoidal positions, rotary encoding on
/// the embeddings, a padding mask from the ids and a causal mask, pooled into classes.
#[derive(Module, Debug)]
struct EncoderClassifier {
    tokens: Embedding,
    sinusoids: PositionalEncoding,
    rotary: RotaryEncoding,
    encoder: TransformerEncoder,
    head: Linear,
}

impl EncoderClassifier {
    fn forward(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let [batch, length] = ids.dims();
        let padding = ids.clone().equal_elem(0);
        let future = Tensor::<2, Bool>::triu_mask([length, length], 1, &ids.device())
            .unsqueeze_dim::<3>(0)
            .expand([batch, length, length]);
        let x = self
            .rotary
            .forward(self.sinusoids.forward(self.tokens.forward(ids)));
        let input = TransformerEncoderInput::new(x)
            .mask_pad(padding)
            .mask_attn(future);
        let encoded = self.encoder.forward(input);
        self.head.forward(encoded.mean_dim(1).squeeze_dim::<2>(1))
    }
}

#[test]
fn transformer_encoder_with_masks_and_positional_encodings_matches_burn() {
    let d = dev();
    d.seed(79);
    let (vocab, length, width) = (16, 5, 8);
    let model = EncoderClassifier {
        tokens: EmbeddingConfig::new(vocab, width).init(&d),
        sinusoids: PositionalEncodingConfig::new(width).init(&d),
        rotary: RotaryEncodingConfig::new(length, width).init(&d),
        encoder: TransformerEncoderConfig::new(width, 16, 2, 2)
            .with_dropout(0.0)
            .init(&d),
        head: LinearConfig::new(width, 3).init(&d),
    };
    // At batch 2 Burn folds the batch into the rows of each Linear's matmul (10 × 8 is squarer
    // than 5 × 8), at batch 3 it does not: the capture traces at two batch sizes that agree.
    // The last position of every other row is padding.
    let id = |k: usize, seed: u64| match k % length {
        c if c + 1 == length && (k / length) % 2 == 1 => 0,
        _ => (((k as u64 * 7919 + seed * 104_729) % (vocab as u64 - 1)) + 1) as i64,
    };
    let forward = |m: &EncoderClassifier, ids| m.forward(ids);
    assert_ids_agree(
        "encoder",
        &model,
        (length, 3),
        &[(2, 7), (3, 8)],
        id,
        forward,
    );
}
