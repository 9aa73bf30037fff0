//! The embedded `ui/` tree: file bytes, their content types, the gzip copies
//! and the asset version that names them in URLs.
//!
//! The files are compiled into the binary (`rust-embed` with `debug-embed`,
//! so debug and release builds serve the same bytes). The asset version is a
//! hash over every file's path and SHA-256, so any change to any file gives
//! every asset a new URL (`/ui/<version>/…`) and browsers may cache them for
//! a year. The gzip copies are computed once, on first use, for the fixed set
//! of text assets: the table's size is bounded by the embedded tree itself.
//!
//! Owns no HTTP; `ui/mod.rs` turns these into responses.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::LazyLock;

use flate2::write::GzEncoder;
use flate2::Compression;
use rust_embed::Embed;

/// Everything under `ui/` that the browser loads. Tooling files (vendoring
/// script, npm manifests, notes) stay out of the binary.
#[derive(Embed)]
#[folder = "../ui/"]
#[exclude = "package.json"]
#[exclude = "package-lock.json"]
#[exclude = "*.md"]
#[exclude = "*.sh"]
#[exclude = "node_modules/*"]
struct Files;

/// One servable file.
pub struct Asset {
    pub bytes: Cow<'static, [u8]>,
    /// gzip of `bytes`, when the type compresses and it saves space.
    pub gzip: Option<Vec<u8>>,
    pub content_type: &'static str,
    /// Strong ETag (quoted hex of the file's SHA-256 prefix).
    pub etag: String,
}

/// All embedded files by path (`index.html`, `js/app.js`, …) and the version.
pub struct Bundle {
    files: HashMap<String, Asset>,
    pub version: String,
}

static BUNDLE: LazyLock<Bundle> = LazyLock::new(Bundle::load);

/// The process-wide bundle (built on first use).
pub fn bundle() -> &'static Bundle {
    &BUNDLE
}

impl Bundle {
    fn load() -> Bundle {
        let mut paths: Vec<String> = Files::iter().map(|p| p.into_owned()).collect();
        paths.sort();
        let mut version_hasher = Fnv::default();
        let mut files = HashMap::with_capacity(paths.len());
        for path in paths {
            let Some(file) = Files::get(&path) else {
                continue;
            };
            let sha = file.metadata.sha256_hash();
            version_hasher.write(path.as_bytes());
            version_hasher.write(&sha);
            let content_type = content_type(&path);
            let gzip = if compressible(content_type) {
                gzip(&file.data).filter(|z| z.len() < file.data.len())
            } else {
                None
            };
            let etag = format!("\"{}\"", hex::encode(&sha[..12]));
            files.insert(
                path,
                Asset {
                    bytes: file.data,
                    gzip,
                    content_type,
                    etag,
                },
            );
        }
        Bundle {
            files,
            version: format!("{:016x}", version_hasher.finish())[..12].to_string(),
        }
    }

    pub fn get(&self, path: &str) -> Option<&Asset> {
        self.files.get(path)
    }

    /// Paths of every embedded file (sorted), for tests and size reports.
    pub fn paths(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.files.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// Content type by extension; unknown extensions are served as bytes.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type == "application/json"
        || content_type == "image/svg+xml"
}

fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 3), Compression::best());
    enc.write_all(data).ok()?;
    enc.finish().ok()
}

/// FNV-1a 64: a stable, dependency-free hash for the asset version (inputs
/// are already SHA-256 digests; this only folds them).
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
