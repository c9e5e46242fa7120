//! A global allocator that counts the heap bytes a test or benchmark
//! binary uses, so hostile-peer tests and soak benchmarks can state a memory
//! bound and check it instead of guessing.
//!
//! Install it once per binary:
//! `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`
//! then measure a stretch with [PeakWatch].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Bytes ever allocated; only grows, so [counting_installed] can tell
/// whether counting happens while other threads free memory.
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// A global allocator that forwards to [System] and counts the bytes
/// currently allocated and the highest count since the last [PeakWatch].
///
/// A test binary installs it with
/// `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc;`.
#[derive(Debug)]
pub struct CountingAlloc;

fn grew(bytes: usize) {
    TOTAL.fetch_add(bytes, Ordering::Relaxed);
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds bookkeeping on atomics, which does not allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new
    }
}

/// Heap bytes allocated right now, as counted by [CountingAlloc].
pub fn current_bytes() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// Highest [current_bytes] since the last [PeakWatch::start].
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Whether this binary counts its allocations with [CountingAlloc]; a
/// memory bound checked without it would pass vacuously.
pub fn counting_installed() -> bool {
    let before = TOTAL.load(Ordering::Relaxed);
    let probe = std::hint::black_box(vec![1u8; 1 << 20]);
    let counted = TOTAL.load(Ordering::Relaxed) >= before + (1 << 20);
    drop(probe);
    counted
}

/// Mebibytes, for messages.
pub fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Peak heap growth over a stretch of a test: [PeakWatch::start] resets the
/// peak to the current count, [PeakWatch::growth] is the peak since then
/// minus the count at the start.
#[derive(Debug)]
pub struct PeakWatch {
    baseline: usize,
}

impl PeakWatch {
    /// Start watching from the current count.
    pub fn start() -> PeakWatch {
        let baseline = current_bytes();
        PEAK.store(baseline, Ordering::Relaxed);
        PeakWatch { baseline }
    }

    /// Peak bytes above the start count so far.
    pub fn growth(&self) -> usize {
        peak_bytes().saturating_sub(self.baseline)
    }

    /// Assert the peak growth is under `bound` bytes, logging the figure
    /// either way (the figures go into docs/hardening.md).
    pub fn assert_under(&self, what: &str, bound: usize) {
        let growth = self.growth();
        tracing::info!(
            target: "memory",
            "{what}: peak heap growth {:.2} MiB (bound {:.0} MiB)",
            mib(growth),
            mib(bound)
        );
        println!(
            "MEMORY {what}: peak growth {growth} bytes ({:.2} MiB), bound {:.0} MiB",
            mib(growth),
            mib(bound)
        );
        assert!(
            growth < bound,
            "{what}: peak heap growth {:.2} MiB exceeds the bound of {:.0} MiB",
            mib(growth),
            mib(bound)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[global_allocator]
    static ALLOC: CountingAlloc = CountingAlloc;

    #[test]
    fn peak_growth_sees_an_allocation_that_is_already_freed() {
        assert!(counting_installed());
        let watch = PeakWatch::start();
        let block = std::hint::black_box(vec![7u8; 4 << 20]);
        drop(block);
        // Other test threads may allocate too, so only a lower bound holds.
        assert!(watch.growth() >= 4 << 20, "growth {}", watch.growth());
    }
}
