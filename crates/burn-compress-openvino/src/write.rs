//! Atomic writing of the `.xml` + `.bin` pair: temporary files in the target directory, renamed
//! into place only when both are complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::error::{ExportError, Result};

/// The `.bin` path that goes with an `.xml` path.
pub fn bin_path(xml: &Path) -> PathBuf {
    xml.with_extension("bin")
}

/// Writes `xml` to `path` and `bin` next to it (same stem, `.bin`). On error nothing new is left
/// behind.
pub fn write_pair(path: &Path, xml: &[u8], bin: &[u8]) -> Result<(PathBuf, PathBuf)> {
    let mut bin_file = bin_temp_file(path)?;
    bin_file.write_all(bin).map_err(io_error(&bin_path(path)))?;
    finish_pair(path, xml, bin_file)
}

/// A temporary file for the `.bin` that goes with the IR at `path` (which must end in `.xml`),
/// in its directory, to be filled and then handed to [`finish_pair`]; removed if dropped.
pub fn bin_temp_file(path: &Path) -> Result<NamedTempFile> {
    if path.extension().and_then(|e| e.to_str()) != Some("xml") {
        return Err(ExportError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the IR path must end in .xml",
            ),
        });
    }
    temp_file(path, &bin_path(path))
}

/// Syncs the filled `.bin` temporary file, writes `xml` the same way and renames both into
/// place (`.bin` first). On error nothing new is left behind.
pub fn finish_pair(path: &Path, xml: &[u8], bin_file: NamedTempFile) -> Result<(PathBuf, PathBuf)> {
    let bin_target = bin_path(path);
    bin_file
        .as_file()
        .sync_all()
        .map_err(io_error(&bin_target))?;
    let mut xml_file = temp_file(path, path)?;
    xml_file.write_all(xml).map_err(io_error(path))?;
    xml_file.as_file().sync_all().map_err(io_error(path))?;
    bin_file
        .persist(&bin_target)
        .map_err(|e| io_error(&bin_target)(e.error))?;
    if let Err(e) = xml_file.persist(path) {
        let _ = std::fs::remove_file(&bin_target);
        return Err(io_error(path)(e.error));
    }
    Ok((path.to_path_buf(), bin_target))
}

/// An empty temporary file next to the IR at `path`, for `target`.
fn temp_file(path: &Path, target: &Path) -> Result<NamedTempFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".burn-compress-");
    // Readable by everyone (less the umask), like any file a deployment copies: temporary
    // files are otherwise created owner-only.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder.tempfile_in(&dir).map_err(io_error(target))
}

/// An I/O error about `path`.
fn io_error(path: &Path) -> impl Fn(std::io::Error) -> ExportError {
    let path = path.to_path_buf();
    move |source| ExportError::Io {
        path: path.clone(),
        source,
    }
}
