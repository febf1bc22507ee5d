//! Atomic writing of the `.xml` + `.bin` pair: temporary files in the target directory, renamed
//! into place only when both are complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{ExportError, Result};

/// The `.bin` path that goes with an `.xml` path.
pub fn bin_path(xml: &Path) -> PathBuf {
    xml.with_extension("bin")
}

/// Writes `xml` to `path` and `bin` next to it (same stem, `.bin`). On error nothing new is left
/// behind.
pub fn write_pair(path: &Path, xml: &[u8], bin: &[u8]) -> Result<(PathBuf, PathBuf)> {
    if path.extension().and_then(|e| e.to_str()) != Some("xml") {
        return Err(ExportError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the IR path must end in .xml",
            ),
        });
    }
    let bin_target = bin_path(path);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ExportError::Io { path: p, source }
    };
    let temp = |data: &[u8], target: &Path| -> Result<tempfile::NamedTempFile> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(".burn-compress-");
        // Readable by everyone (less the umask), like any file a deployment copies: temporary
        // files are otherwise created owner-only.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
        let mut f = builder.tempfile_in(&dir).map_err(io(target))?;
        f.write_all(data).map_err(io(target))?;
        f.as_file().sync_all().map_err(io(target))?;
        Ok(f)
    };
    let bin_tmp = temp(bin, &bin_target)?;
    let xml_tmp = temp(xml, path)?;
    bin_tmp
        .persist(&bin_target)
        .map_err(|e| io(&bin_target)(e.error))?;
    if let Err(e) = xml_tmp.persist(path) {
        let _ = std::fs::remove_file(&bin_target);
        return Err(io(path)(e.error));
    }
    Ok((path.to_path_buf(), bin_target))
}
