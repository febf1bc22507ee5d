//! Dense f32 constants and the little arithmetic constant folding needs.

use crate::error::{GraphError, Result};

/// A dense, row-major f32 constant.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstTensor {
    /// Dimensions; empty for a scalar.
    pub shape: Vec<usize>,
    /// Row-major values, `shape.iter().product()` of them.
    pub data: Vec<f32>,
}

impl ConstTensor {
    /// A constant of the given shape; fails when the data length does not match.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(GraphError::Invalid(format!(
                "constant of shape {shape:?} needs {n} values, got {}",
                data.len()
            )));
        }
        Ok(Self { shape, data })
    }

    /// A rank-0 constant.
    pub fn scalar(value: f32) -> Self {
        Self {
            shape: Vec::new(),
            data: vec![value],
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the constant has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The same values under another shape of equal size.
    pub fn reshape(&self, shape: Vec<usize>) -> Result<Self> {
        Self::new(shape, self.data.clone())
    }

    /// Element-wise unary map.
    pub fn map(&self, f: impl Fn(f32) -> f32) -> Self {
        Self {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    /// Element-wise binary operation with numpy broadcasting.
    pub fn zip(&self, other: &Self, f: impl Fn(f32, f32) -> f32) -> Result<Self> {
        let shape = broadcast_shape(&self.shape, &other.shape)?;
        let n: usize = shape.iter().product();
        let sa = broadcast_strides(&self.shape, &shape);
        let sb = broadcast_strides(&other.shape, &shape);
        let mut data = Vec::with_capacity(n);
        let mut index = vec![0usize; shape.len()];
        for _ in 0..n {
            let (mut ia, mut ib) = (0, 0);
            for (d, &i) in index.iter().enumerate() {
                ia += i * sa[d];
                ib += i * sb[d];
            }
            data.push(f(self.data[ia], other.data[ib]));
            for d in (0..shape.len()).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Self::new(shape, data)
    }

    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    pub fn transpose(&self, perm: &[usize]) -> Result<Self> {
        if perm.len() != self.shape.len() {
            return Err(GraphError::Invalid(format!(
                "permutation {perm:?} for rank {}",
                self.shape.len()
            )));
        }
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        let strides = strides(&self.shape);
        let mut data = Vec::with_capacity(self.len());
        let mut index = vec![0usize; shape.len()];
        for _ in 0..self.len() {
            let offset: usize = index.iter().zip(perm).map(|(&i, &p)| i * strides[p]).sum();
            data.push(self.data[offset]);
            for d in (0..shape.len()).rev() {
                index[d] += 1;
                if index[d] < shape[d] {
                    break;
                }
                index[d] = 0;
            }
        }
        Self::new(shape, data)
    }

    /// Whether every element is the same value (or the constant is a single element).
    pub fn is_uniform(&self) -> bool {
        self.data.windows(2).all(|w| w[0] == w[1])
    }
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Numpy broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i + a.len() >= rank {
            a[i + a.len() - rank]
        } else {
            1
        };
        let db = if i + b.len() >= rank {
            b[i + b.len() - rank]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(GraphError::Invalid(format!(
                    "shapes {a:?} and {b:?} do not broadcast"
                )))
            }
        };
    }
    Ok(out)
}

fn broadcast_strides(shape: &[usize], target: &[usize]) -> Vec<usize> {
    let own = strides(shape);
    let offset = target.len() - shape.len();
    (0..target.len())
        .map(|d| {
            if d < offset || shape[d - offset] == 1 {
                0
            } else {
                own[d - offset]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_zip_matches_hand_computation() {
        let a = ConstTensor::new(vec![2, 1], vec![1.0, 2.0]).unwrap();
        let b = ConstTensor::new(vec![3], vec![10.0, 20.0, 30.0]).unwrap();
        let c = a.zip(&b, |x, y| x + y).unwrap();
        assert_eq!(c.shape, vec![2, 3]);
        assert_eq!(c.data, vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
        assert!(a
            .zip(
                &ConstTensor::new(vec![3, 1], vec![0.0; 3]).unwrap(),
                |x, _| x
            )
            .is_err());
    }

    #[test]
    fn transpose_moves_axes() {
        let a = ConstTensor::new(vec![2, 3], (0..6).map(|v| v as f32).collect()).unwrap();
        let t = a.transpose(&[1, 0]).unwrap();
        assert_eq!(t.shape, vec![3, 2]);
        assert_eq!(t.data, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }
}
