//! The memory allocator for training binaries: [`TrainingAllocator`], mimalloc unless the
//! environment asks for the platform's own (`BURN_COMPRESS_ALLOCATOR=system`).
//!
//! A training step on a CPU backend allocates and frees the same large tensors every step
//! (activations, their gradients, the fake-quantized copies). glibc's `malloc` hands blocks that
//! large back to the kernel when they are freed (`munmap`, heap trimming), so the next step
//! takes a page fault per 4 KiB again, and with several threads a TLB shootdown per unmap;
//! mimalloc keeps the freed memory for reuse. On the reference CNN (`cargo bench --bench
//! qat_step`, README) this makes step times steadier and the cost of compression smaller.
//!
//! Opt in from a binary (the `burn-compress` CLI and the benchmarks do):
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: burn_compress_recipes::TrainingAllocator =
//!     burn_compress_recipes::TrainingAllocator;
//! # fn main() {}
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CStr;
use std::sync::atomic::{AtomicU8, Ordering};

use mimalloc::MiMalloc;

/// The environment variable that picks the allocator: `mimalloc` (the default) or `system`.
pub const ALLOCATOR_VAR: &str = "BURN_COMPRESS_ALLOCATOR";

/// A global allocator that is mimalloc, or the platform's allocator when
/// [`ALLOCATOR_VAR`] is `system`; the choice is made at the process's first allocation and
/// never changes, so every block is freed by the allocator that made it.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrainingAllocator;

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// The allocator in force, decided from the environment the first time (`getenv` does not
/// allocate, so this is safe inside the allocator).
fn choice() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNDECIDED => {
            // SAFETY: a NUL-terminated name; the result is read at once, before any other call
            // could change the environment.
            let value = unsafe { libc::getenv(c"BURN_COMPRESS_ALLOCATOR".as_ptr()) };
            // SAFETY: `getenv` returns null or a NUL-terminated string.
            let system = !value.is_null() && unsafe { CStr::from_ptr(value) } == c"system";
            let choice = if system { SYSTEM } else { MIMALLOC };
            CHOICE.store(choice, Ordering::Relaxed);
            choice
        }
        choice => choice,
    }
}

// SAFETY: every call goes to one of two allocators that implement `GlobalAlloc` correctly, the
// same one for the whole life of the process.
unsafe impl GlobalAlloc for TrainingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match choice() {
            SYSTEM => System.alloc(layout),
            _ => MiMalloc.alloc(layout),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match choice() {
            SYSTEM => System.alloc_zeroed(layout),
            _ => MiMalloc.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match choice() {
            SYSTEM => System.dealloc(ptr, layout),
            _ => MiMalloc.dealloc(ptr, layout),
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match choice() {
            SYSTEM => System.realloc(ptr, layout, new_size),
            _ => MiMalloc.realloc(ptr, layout, new_size),
        }
    }
}

/// The allocator this process uses if it installed [`TrainingAllocator`]: `"mimalloc"` or
/// `"system"`.
pub fn allocator_name() -> &'static str {
    match choice() {
        SYSTEM => "system",
        _ => "mimalloc",
    }
}

/// Refuses an [`ALLOCATOR_VAR`] value other than `mimalloc` or `system` (the allocator itself
/// cannot report it: it falls back to mimalloc).
pub fn check_allocator_var() -> Result<(), String> {
    match std::env::var(ALLOCATOR_VAR) {
        Ok(value) if value != "mimalloc" && value != "system" => Err(format!(
            "{ALLOCATOR_VAR}={value:?}: the allocator is `mimalloc` (the default) or `system`"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_variable_read_inside_the_allocator_is_the_documented_one() {
        assert_eq!(
            c"BURN_COMPRESS_ALLOCATOR".to_str(),
            Ok(super::ALLOCATOR_VAR)
        );
    }
}
