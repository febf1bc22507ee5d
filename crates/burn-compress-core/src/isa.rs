//! Runs a kernel compiled for the widest vector instructions the CPU has (AVX-512 or AVX2 on
//! x86-64; the build's baseline elsewhere). The kernels use only IEEE `+ − × ÷`, comparisons
//! and selects (no fused multiply-add: Rust never contracts `a·b + c`), so every instruction
//! set gives the same bits.

/// A piece of work whose body is compiled once per instruction set: implement
/// [`run`](Kernel::run) with `#[inline(always)]`, and everything it calls too (closures and
/// functions that are not inlined are compiled for the baseline only).
pub(crate) trait Kernel {
    /// What the work returns.
    type Output;
    /// Does the work.
    fn run(self) -> Self::Output;
}

/// An instruction set a [`Kernel`] can be compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    /// What the build targets (SSE2 on x86-64 by default).
    Baseline,
    /// x86-64 with AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86-64 with AVX-512F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// Every instruction set this build can compile kernels for, widest first.
    const ALL: &'static [Isa] = &[
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2,
        Isa::Baseline,
    ];

    /// Whether this CPU runs it (detected once per feature; cheap after).
    fn is_available(self) -> bool {
        match self {
            Isa::Baseline => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
        }
    }

    /// The instruction sets this CPU runs, widest first (the tests run each).
    #[cfg(test)]
    pub(crate) fn supported() -> impl Iterator<Item = Isa> {
        Self::ALL.iter().copied().filter(|isa| isa.is_available())
    }

    /// The widest instruction set this CPU runs.
    pub(crate) fn best() -> Isa {
        Self::ALL
            .iter()
            .copied()
            .find(|isa| isa.is_available())
            .unwrap_or(Isa::Baseline)
    }

    /// Runs `kernel` compiled for this instruction set.
    ///
    /// # Panics
    /// If the CPU does not support it.
    #[inline]
    pub(crate) fn run<K: Kernel>(self, kernel: K) -> K::Output {
        match self {
            Isa::Baseline => kernel.run(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                assert!(self.is_available(), "this CPU has no AVX2");
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { x86::avx2(kernel) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                assert!(
                    std::arch::is_x86_feature_detected!("avx512f"),
                    "no AVX-512F"
                );
                // SAFETY: the CPU supports AVX-512F (checked just above).
                unsafe { x86::avx512(kernel) }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Kernel;

    /// `kernel` compiled with AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }

    /// `kernel` compiled with AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2<K: Kernel>(kernel: K) -> K::Output {
        kernel.run()
    }
}
