//! Memory-mapped index files, and releasing their pages from the process.
//!
//! tantivy reads every partition through `mmap`. The pages a merge or a
//! query touched stay mapped into the collector until the file is closed,
//! so a minute of full-rate ingest (merges read every segment they merge)
//! leaves hundreds of megabytes of index files counted in the process's RSS,
//! although they are clean page cache the kernel could drop at any time.
//!
//! [`MappedDirectory`] is tantivy's `MmapDirectory` except that it maps
//! files for reading itself, through [`MappedFiles`], which remembers every
//! mapping weakly (a mapping still goes away with the last `OwnedBytes` over
//! it, as before). [`MappedFiles::release`], run every [`RELEASE_INTERVAL`]
//! by a `skein-index-release` thread, tells the kernel with
//! `madvise(MADV_DONTNEED)` that the collector does not need those pages
//! now: they leave the process's page tables but stay in the page cache, so
//! the next read of one is a minor fault that maps the same
//! cached page again (no disk read unless the kernel evicted it meanwhile).
//! Index files are immutable once written, and for a shared read-only file
//! mapping `MADV_DONTNEED` never changes what a read returns.
//!
//! What it owns: the registry of mapped files and the release thread.
//! What it must not touch: the files' contents, tantivy's segment lifecycle.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use memmap2::{Mmap, UncheckedAdvice};
use parking_lot::Mutex;
use prometheus::{IntCounter, IntGauge};
use tantivy::directory::error::{
    DeleteError, LockError, OpenDirectoryError, OpenReadError, OpenWriteError,
};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, OwnedBytes, WatchCallback,
    WatchHandle, WritePtr,
};

/// The longest mapped index pages stay in the process unreleased.
pub(crate) const RELEASE_INTERVAL: Duration = Duration::from_millis(500);

/// How often the release thread looks at the process's file-backed
/// resident memory (one read of `/proc/self/statm`).
pub(crate) const RELEASE_CHECK: Duration = Duration::from_millis(50);

/// Growth of file-backed resident memory since the last release that makes
/// the next one due at once: a merge reads segments faster than one
/// [`RELEASE_INTERVAL`] allows for (a 60 s run at full rate reached 370 MB
/// of mapped pages with a fixed 500 ms interval).
pub(crate) const RELEASE_GROWTH: u64 = 32 << 20;

/// When the next release is due: [`RELEASE_INTERVAL`] after the last one,
/// or as soon as file-backed resident memory is [`RELEASE_GROWTH`] above
/// what it was right after the last one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReleasePolicy {
    interval: Duration,
    growth: u64,
    since_release: Duration,
    after_release: u64,
}

impl ReleasePolicy {
    pub fn new(interval: Duration, growth: u64) -> Self {
        ReleasePolicy {
            interval,
            growth,
            since_release: Duration::ZERO,
            after_release: 0,
        }
    }

    /// `elapsed` passed since the last call and file-backed resident memory
    /// is now `resident` bytes (`None` when it cannot be read): is a release
    /// due?
    pub fn due(&mut self, elapsed: Duration, resident: Option<u64>) -> bool {
        self.since_release += elapsed;
        self.since_release >= self.interval
            || resident.is_some_and(|r| r >= self.after_release.saturating_add(self.growth))
    }

    /// A release just ran; file-backed resident memory after it is `resident`.
    pub fn released(&mut self, resident: Option<u64>) {
        self.since_release = Duration::ZERO;
        self.after_release = resident.unwrap_or(0);
    }
}

/// The process's file-backed (and shared) resident bytes, from
/// `/proc/self/statm`; `None` where that cannot be read.
fn file_resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let shared_pages: u64 = statm.split_whitespace().nth(2)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(shared_pages * u64::try_from(page).ok()?)
}

/// Every index file currently mapped by a [`MappedDirectory`].
#[derive(Clone)]
pub(crate) struct MappedFiles {
    inner: Arc<Inner>,
}

struct Inner {
    /// Mapped files by full path, weakly: a mapping lives as long as some
    /// `OwnedBytes` over it, and is unmapped when the last one goes. Also
    /// the cache that maps a file once however often it is opened. Dead
    /// entries are pruned on every release; the live ones are bounded by
    /// the segment files of the open partitions.
    maps: Mutex<HashMap<PathBuf, Weak<Mmap>>>,
    metrics: MappedMetrics,
}

/// `skein_index_mapped_*`.
#[derive(Clone)]
pub(crate) struct MappedMetrics {
    /// Bytes of index files mapped (all of each file, resident or not).
    pub bytes: IntGauge,
    /// Index files mapped.
    pub files: IntGauge,
    /// Release passes run.
    pub releases: IntCounter,
}

impl MappedFiles {
    pub fn new(metrics: MappedMetrics) -> Self {
        MappedFiles {
            inner: Arc::new(Inner {
                maps: Mutex::new(HashMap::new()),
                metrics,
            }),
        }
    }

    /// The mapping of `path`: the cached one while it lives, else a new one.
    fn map(&self, path: &Path) -> Result<OwnedBytes, OpenReadError> {
        let mut maps = self.inner.maps.lock();
        if let Some(map) = maps.get(path).and_then(Weak::upgrade) {
            return Ok(OwnedBytes::new(MapBytes(map)));
        }
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                OpenReadError::FileDoesNotExist(path.to_path_buf())
            } else {
                OpenReadError::wrap_io_error(e, path.to_path_buf())
            }
        })?;
        let len = file
            .metadata()
            .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))?
            .len();
        if len == 0 {
            // An empty file cannot be mapped (and has nothing to release).
            return Ok(OwnedBytes::empty());
        }
        // SAFETY: index files are written once, completely, before tantivy
        // opens them for reading, and never modified afterwards (a segment
        // is replaced by new files, and deleting a file leaves the mapping
        // valid), so the mapped bytes never change under a reader. This is
        // what tantivy's own `MmapDirectory` relies on.
        let map = Arc::new(
            unsafe { Mmap::map(&file) }
                .map_err(|e| OpenReadError::wrap_io_error(e, path.to_path_buf()))?,
        );
        maps.insert(path.to_path_buf(), Arc::downgrade(&map));
        Ok(OwnedBytes::new(MapBytes(map)))
    }

    /// Release the pages of every live mapping from the process (see the
    /// module docs); forget the unmapped ones. Returns the bytes of the
    /// files still mapped.
    pub fn release(&self) -> u64 {
        let live: Vec<Arc<Mmap>> = {
            let mut maps = self.inner.maps.lock();
            maps.retain(|_, m| m.strong_count() > 0);
            maps.values().filter_map(Weak::upgrade).collect()
        };
        let mut bytes = 0u64;
        for map in &live {
            // SAFETY: `map` is a read-only shared mapping of an immutable
            // file (see `map`), kept mapped by this `Arc` while we advise
            // it. For such a mapping MADV_DONTNEED only drops page-table
            // entries: the next read faults the same bytes in again from the
            // page cache (or the file). An error only means the pages stay.
            let _ = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
            bytes += map.len() as u64;
        }
        let m = &self.inner.metrics;
        m.bytes.set(bytes as i64);
        m.files.set(live.len() as i64);
        m.releases.inc();
        bytes
    }

    /// Run [`MappedFiles::release`] whenever the [`ReleasePolicy`] says so,
    /// on a thread named `skein-index-release`, until every other handle to
    /// these files (the indexes) is gone.
    pub fn spawn_release_thread(&self) -> std::io::Result<()> {
        let weak = Arc::downgrade(&self.inner);
        let mut policy = ReleasePolicy::new(RELEASE_INTERVAL, RELEASE_GROWTH);
        std::thread::Builder::new()
            .name("skein-index-release".into())
            .spawn(move || loop {
                std::thread::sleep(RELEASE_CHECK);
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                if policy.due(RELEASE_CHECK, file_resident_bytes()) {
                    MappedFiles { inner }.release();
                    policy.released(file_resident_bytes());
                }
            })
            .map(|_| ())
    }
}

/// A shared mapping as the bytes `OwnedBytes` holds.
struct MapBytes(Arc<Mmap>);

impl Deref for MapBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

// SAFETY: the slice points into the mapping, which does not move while the
// `Arc` (and so this value) lives, wherever the value itself is moved.
unsafe impl stable_deref_trait::StableDeref for MapBytes {}

/// tantivy's `MmapDirectory` with its reads going through [`MappedFiles`]
/// (writes, deletes, locks and watches are `MmapDirectory`'s).
#[derive(Clone)]
pub(crate) struct MappedDirectory {
    root: PathBuf,
    inner: MmapDirectory,
    files: MappedFiles,
}

impl MappedDirectory {
    pub fn open(path: &Path, files: MappedFiles) -> Result<Self, OpenDirectoryError> {
        Ok(MappedDirectory {
            root: path.to_path_buf(),
            inner: MmapDirectory::open(path)?,
            files,
        })
    }
}

impl fmt::Debug for MappedDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MappedDirectory({})", self.root.display())
    }
}

impl Directory for MappedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(self.files.map(&self.root.join(path))?))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.inner.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.inner.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.inner.atomic_write(path, data)
    }

    fn sync_directory(&self) -> std::io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(watch_callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use tantivy::HasLen;

    fn metrics() -> MappedMetrics {
        MappedMetrics {
            bytes: IntGauge::new("b", "b").unwrap(),
            files: IntGauge::new("f", "f").unwrap(),
            releases: IntCounter::new("r", "r").unwrap(),
        }
    }

    /// Resident kB of the mapping that contains `addr`, from /proc/self/smaps.
    fn resident_kb(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((a, b)) = range.split_once('-') {
                    if let (Ok(a), Ok(b)) =
                        (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                    {
                        inside = a <= addr && addr < b;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("Rss:") {
                    return kb.trim().trim_end_matches("kB").trim().parse().unwrap();
                }
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn release_drops_resident_pages_and_reads_stay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut w = std::fs::File::create(dir.path().join("seg.idx")).unwrap();
        w.write_all(&content).unwrap();
        drop(w);

        let files = MappedFiles::new(metrics());
        let d = MappedDirectory::open(dir.path(), files.clone()).unwrap();
        let slice = d.open_read(Path::new("seg.idx")).unwrap();
        let bytes = slice.read_bytes().unwrap();
        let addr = bytes.as_slice().as_ptr() as usize;
        // Touch every page.
        let sum: u64 = bytes.as_slice().iter().map(|&b| u64::from(b)).sum();
        assert!(resident_kb(addr) >= 4000, "{} kB", resident_kb(addr));

        assert_eq!(files.release(), content.len() as u64);
        assert!(
            resident_kb(addr) < 100,
            "{} kB after release",
            resident_kb(addr)
        );
        assert_eq!(bytes.as_slice(), &content[..]);
        let again: u64 = bytes.as_slice().iter().map(|&b| u64::from(b)).sum();
        assert_eq!(sum, again);
        assert_eq!(files.inner.metrics.files.get(), 1);

        // Opened again while mapped: the same mapping.
        let other = d
            .open_read(Path::new("seg.idx"))
            .unwrap()
            .read_bytes()
            .unwrap();
        assert_eq!(other.as_slice().as_ptr() as usize, addr);

        // The slice tantivy keeps (not the file handle) keeps the mapping
        // known; once every slice is gone it is forgotten.
        drop(slice);
        assert_eq!(files.release(), content.len() as u64);
        drop((bytes, other));
        assert_eq!(files.release(), 0);
        assert_eq!(files.inner.metrics.files.get(), 0);
        assert!(files.inner.maps.lock().is_empty());

        // Empty and missing files.
        std::fs::File::create(dir.path().join("empty")).unwrap();
        assert!(d.open_read(Path::new("empty")).unwrap().is_empty());
        assert!(matches!(
            d.open_read(Path::new("missing")),
            Err(OpenReadError::FileDoesNotExist(_))
        ));
    }

    #[test]
    fn release_is_due_on_time_or_on_growth() {
        const MS: Duration = Duration::from_millis(1);
        let mut p = ReleasePolicy::new(500 * MS, 32 << 20);
        p.released(Some(100 << 20));
        // Quiet: due only once the interval has passed.
        for _ in 0..9 {
            assert!(!p.due(50 * MS, Some(110 << 20)));
        }
        assert!(p.due(50 * MS, Some(110 << 20)));
        p.released(Some(100 << 20));
        // A merge mapping pages fast: due as soon as growth reaches 32 MiB.
        assert!(!p.due(50 * MS, Some((132 << 20) - 1)));
        assert!(p.due(50 * MS, Some(132 << 20)));
        p.released(Some(101 << 20));
        assert!(!p.due(50 * MS, Some(120 << 20)));
        // Unreadable statm: the interval still holds.
        let mut blind = ReleasePolicy::new(500 * MS, 32 << 20);
        blind.released(None);
        assert!(!blind.due(450 * MS, None));
        assert!(blind.due(50 * MS, None));
    }

    #[test]
    fn file_resident_bytes_agree_with_the_kernels_rss_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![7u8; 8 << 20]).unwrap();
        let file = File::open(&path).unwrap();
        // SAFETY: the test owns the file and nothing writes it meanwhile.
        let map = unsafe { Mmap::map(&file) }.unwrap();
        let sum: u64 = map.iter().step_by(4096).map(|b| u64::from(*b)).sum();
        assert_eq!(sum, 7 * 2048);
        let statm = file_resident_bytes().expect("statm is readable on Linux");
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{key} missing from /proc/self/status"))
        };
        let kernel = (kib("RssFile:") + kib("RssShmem:")) * 1024;
        assert!(kernel >= 8 << 20, "the 8 MiB mapping is resident: {kernel}");
        // Read a moment apart, with other tests running: close, not equal.
        assert!(
            statm.abs_diff(kernel) <= 4 << 20,
            "statm says {statm} bytes, status {kernel}"
        );
        drop(map);
    }
}
