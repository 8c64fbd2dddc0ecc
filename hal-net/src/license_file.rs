//! Reads a license file from disk and parses it, reading no more than the parser accepts.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use hal_core::license::{License, LicenseErrorKind, LicenseErrors, limits, parse};

/// Why a license file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LicenseFileError {
    #[error("license file {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(LicenseErrors),
}

/// A license file as read: its text (for tools that rewrite it) and the parsed license.
#[derive(Debug)]
pub struct LoadedLicense {
    pub text: String,
    pub license: License,
}

/// Reads and parses the license file at `path`. Messages name the file as `path` is
/// written.
pub fn load(path: &Path) -> Result<LoadedLicense, LicenseFileError> {
    let name = path.display().to_string();
    let io = |source| LicenseFileError::Io {
        path: name.clone(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    // One byte past the limit is enough for the parser to report the file as too large.
    let cap = u64::try_from(limits::FILE_BYTES_MAX + 1).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes).map_err(io)?;
    let license = parse(&name, &bytes).map_err(|mut errors| {
        // The parser saw only the first bytes; report the file's real size.
        for error in &mut errors.errors {
            if let LicenseErrorKind::FileTooLarge { size: seen, .. } = &mut error.kind {
                *seen = usize::try_from(size).unwrap_or(usize::MAX);
            }
        }
        LicenseFileError::Invalid(errors)
    })?;
    // The parser accepted the bytes as UTF-8; only a leading byte-order mark is dropped.
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(LoadedLicense { text, license })
}
