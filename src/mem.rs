//! What the process asks of its memory allocator.

/// Hands the pages that freed memory leaves whole back to the kernel
/// (glibc's `malloc_trim`). glibc keeps freed memory in the arena of the
/// thread that freed it, and a thread made later takes an arena by a round
/// robin, or whichever arena's lock is free at that moment: at the end of
/// a run, the findings made on such a thread sometimes found none of the
/// pages the tracker and the detectors had freed, and the 1 GB benchmark's
/// peak was 3.5 MB higher in 2-5 runs of 10 (49.1-49.9 MB instead of
/// 46.0-46.3). Trimmed first, the findings start from what is in use, not
/// from every page ever touched. Elsewhere, nothing.
pub fn release_freed_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; no
    // allocation is moved or touched.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Room in `v` for `more` items, growing by an eighth of what it holds (at
/// least `least`) rather than doubling: for lists that live long and come
/// by the thousand (a detector's per-pair lists), where doubling leaves a
/// quarter of them unused on average.
pub(crate) fn reserve_by_eighth<T>(v: &mut Vec<T>, more: usize, least: usize) {
    if v.capacity() - v.len() < more {
        v.reserve_exact(eighth_more(v.capacity(), more, least));
    }
}

/// What [`reserve_by_eighth`] adds to a full `capacity` that needs `more`.
pub(crate) fn eighth_more(capacity: usize, more: usize, least: usize) -> usize {
    more.max(capacity / 8).max(least)
}
