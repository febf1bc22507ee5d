//! The MNIST-10k dataset shipped in `data/mnist-10k` (the 10,000-image MNIST test set,
//! CC BY-SA 3.0), split deterministically: index % 5 == 4 -> test (2,000), else train (8,000).

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Shape, Tensor, TensorData};
use flate2::read::GzDecoder;

/// Mean of MNIST pixels (in [0, 1]) used for normalisation.
pub const MEAN: f32 = 0.1307;
/// Standard deviation of MNIST pixels used for normalisation.
pub const STD: f32 = 0.3081;
/// Side of an image.
pub const SIDE: usize = 28;

/// Errors while reading the dataset; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be opened or decompressed.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not the IDX file it should be.
    #[error("`{path}` is not a valid IDX file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A set of normalised 28x28 images with their labels.
#[derive(Clone, Debug, Default)]
pub struct MnistSplit {
    /// Normalised pixels, `len() * 784` values, row-major.
    pub images: Vec<f32>,
    /// Labels 0-9.
    pub labels: Vec<u8>,
}

/// The train (8,000) and test (2,000) splits.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// index % 5 != 4.
    pub train: MnistSplit,
    /// index % 5 == 4.
    pub test: MnistSplit,
}

/// The dataset folder of this repository (`<workspace>/data/mnist-10k`).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-10k")
}

fn read_gz(path: &Path) -> Result<Vec<u8>, DatasetError> {
    let io = |source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    GzDecoder::new(File::open(path).map_err(io)?)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

fn header(
    bytes: &[u8],
    path: &Path,
    magic: u32,
    fields: usize,
) -> Result<Vec<usize>, DatasetError> {
    let format = |reason: String| DatasetError::Format {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < 4 * (fields + 1) {
        return Err(format(format!("only {} bytes", bytes.len())));
    }
    let word = |i: usize| {
        u32::from_be_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    };
    if word(0) != magic {
        return Err(format(format!(
            "magic number {:#x}, expected {magic:#x}",
            word(0)
        )));
    }
    Ok((1..=fields).map(|i| word(i) as usize).collect())
}

impl Mnist {
    /// Reads `t10k-images-idx3-ubyte.gz` and `t10k-labels-idx1-ubyte.gz` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, DatasetError> {
        let images_path = dir.join("t10k-images-idx3-ubyte.gz");
        let labels_path = dir.join("t10k-labels-idx1-ubyte.gz");
        let images = read_gz(&images_path)?;
        let labels = read_gz(&labels_path)?;
        let image_dims = header(&images, &images_path, 0x0803, 3)?;
        let label_dims = header(&labels, &labels_path, 0x0801, 1)?;
        let count = image_dims[0];
        let format = |path: &Path, reason: String| DatasetError::Format {
            path: path.to_path_buf(),
            reason,
        };
        if image_dims[1..] != [SIDE, SIDE] || images.len() != 16 + count * SIDE * SIDE {
            return Err(format(
                &images_path,
                format!("dims {image_dims:?}, {} bytes", images.len()),
            ));
        }
        if label_dims[0] != count || labels.len() != 8 + count {
            return Err(format(
                &labels_path,
                format!("{} labels for {count} images", label_dims[0]),
            ));
        }
        if let Some(bad) = labels[8..].iter().find(|&&label| label > 9) {
            return Err(format(&labels_path, format!("label {bad} out of 0-9")));
        }
        let mut train = MnistSplit::default();
        let mut test = MnistSplit::default();
        for index in 0..count {
            let split = if index % 5 == 4 {
                &mut test
            } else {
                &mut train
            };
            let pixels = &images[16 + index * SIDE * SIDE..16 + (index + 1) * SIDE * SIDE];
            split
                .images
                .extend(pixels.iter().map(|&p| (p as f32 / 255.0 - MEAN) / STD));
            split.labels.push(labels[8 + index]);
        }
        Ok(Self { train, test })
    }
}

impl MnistSplit {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `count` images as a new split.
    pub fn take(&self, count: usize) -> MnistSplit {
        let count = count.min(self.len());
        MnistSplit {
            images: self.images[..count * SIDE * SIDE].to_vec(),
            labels: self.labels[..count].to_vec(),
        }
    }

    /// Images `indices` as a `[n, 1, 28, 28]` tensor and their labels as `[n]`.
    pub fn batch(&self, indices: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let pixels = SIDE * SIDE;
        let mut images = Vec::with_capacity(indices.len() * pixels);
        for &index in indices {
            images.extend_from_slice(&self.images[index * pixels..(index + 1) * pixels]);
        }
        let labels: Vec<i64> = indices.iter().map(|&i| self.labels[i] as i64).collect();
        let n = indices.len();
        (
            Tensor::from_data(
                TensorData::new(images, Shape::new([n, 1, SIDE, SIDE])),
                device,
            ),
            Tensor::from_data(TensorData::new(labels, Shape::new([n])), device),
        )
    }

    /// Index batches of `batch_size` in order, or shuffled with `seed`.
    pub fn batch_indices(&self, batch_size: usize, shuffle_seed: Option<u64>) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(seed) = shuffle_seed {
            use rand::seq::SliceRandom;
            use rand::SeedableRng;
            order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        }
        order
            .chunks(batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    }
}
