//! Certificate and key files on disk: reading PEM (bounded, with errors that name the
//! file and say what it holds instead), and writing them without ever exposing a key.
//!
//! A file is written to a temporary file beside it and renamed into place, so a reader
//! sees the old file or the new one, never half of one. Key files are created 0600 and
//! stay so from their first byte; certificates are 0644. Without `replace`, an existing
//! file is never replaced, even one that appears between a check and the write.
//!
//! This module knows nothing of which file holds what: [`super::triad_dir`] does.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// A certificate, a key or a small bundle of CA certificates is a few kilobytes; anything
/// much larger is none of them.
const PEM_FILE_BYTES_MAX: u64 = 256 * 1024;
/// Mode of a private key file.
pub const KEY_FILE_MODE: u32 = 0o600;
/// Mode of a certificate file.
pub const CERT_FILE_MODE: u32 = 0o644;
/// Mode of a directory `tls init` creates (it holds the CA key).
pub const DIR_MODE: u32 = 0o700;

/// Reads a PEM file of at most [`PEM_FILE_BYTES_MAX`] bytes. The limit holds while
/// reading, so a device or a pipe is refused rather than read forever.
fn read_small(path: &Path) -> Result<Vec<u8>, TlsError> {
    let file = File::open(path).map_err(TlsError::io(path, "read the file"))?;
    let mut bytes = Vec::new();
    file.take(PEM_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(TlsError::io(path, "read the file"))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > PEM_FILE_BYTES_MAX {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Every certificate in a PEM file, in order (a CA bundle holds several). At least one,
/// else [`TlsError::NotCertificate`].
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_small(path)?;
    let not_certificate = || TlsError::NotCertificate {
        path: path.to_path_buf(),
        hint: cert_hint(&bytes),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| not_certificate())?;
    if certs.is_empty() {
        return Err(not_certificate());
    }
    Ok(certs)
}

/// The one certificate in a PEM file (a leaf: servers and operators present one).
pub fn read_cert(path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    let mut certs = read_certs(path)?;
    if certs.len() > 1 {
        return Err(TlsError::BadCertificate {
            path: path.to_path_buf(),
            reason: format!(
                "the file holds {} certificates; a server or admin certificate file holds one",
                certs.len()
            ),
        });
    }
    Ok(certs.remove(0))
}

/// The private key in a PEM file, with its PEM text (rcgen reads keys from text).
pub fn read_key(path: &Path) -> Result<(PrivateKeyDer<'static>, String), TlsError> {
    let bytes = read_small(path)?;
    let not_key = |hint| TlsError::NotKey {
        path: path.to_path_buf(),
        hint,
    };
    let text = String::from_utf8(bytes).map_err(|_| not_key("; the file is not text"))?;
    let key = PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|_| {
        not_key(if text.contains("-----BEGIN CERTIFICATE-----") {
            "; this is a certificate: pass its .key file"
        } else {
            ""
        })
    })?;
    Ok((key, text))
}

/// Why a file that holds no certificate might be that way.
fn cert_hint(bytes: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("PRIVATE KEY-----") {
        "; this is a private key: pass the .pem certificate beside it"
    } else if text.contains("-----BEGIN CERTIFICATE-----") {
        "; its PEM block is damaged"
    } else if std::str::from_utf8(bytes).is_err() {
        "; the file is not text"
    } else {
        ""
    }
}

/// Whether others than the owner may read or write `path` (a key should be 0600).
pub fn readable_by_others(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Creates `dir` if it is missing, mode 0700 (it will hold a private key). An existing
/// directory keeps its mode.
pub fn create_dir(dir: &Path) -> Result<(), TlsError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder
        .create(dir)
        .map_err(TlsError::io(dir, "create the directory"))
}

/// Those of `paths` that exist (or are dangling links, which a write would follow).
pub fn existing(paths: &[PathBuf]) -> Vec<PathBuf> {
    paths
        .iter()
        .filter(|path| fs::symlink_metadata(path).is_ok())
        .cloned()
        .collect()
}

/// Writes `bytes` to `path` with `mode` through a temporary file in the same directory
/// and a rename. The temporary file is created 0600 and only then given `mode`, so a
/// key is never readable by others. Without `replace`, an existing `path` is left alone
/// and reported as [`TlsError::Exists`].
pub fn write_file(path: &Path, bytes: &[u8], mode: u32, replace: bool) -> Result<(), TlsError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let write = TlsError::io(path, "write the file");
    let mut temp = tempfile::Builder::new()
        .prefix(".hal-tls-")
        .tempfile_in(dir)
        .map_err(TlsError::io(path, "write the file"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temp.as_file()
            .set_permissions(fs::Permissions::from_mode(mode))
            .map_err(TlsError::io(path, "write the file"))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(TlsError::io(path, "write the file"))?;
    let persisted = if replace {
        temp.persist(path)
    } else {
        temp.persist_noclobber(path)
    };
    match persisted {
        Ok(_) => Ok(()),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Err(TlsError::Exists {
            paths: vec![path.to_path_buf()],
        }),
        Err(e) => Err(write(e.error)),
    }
}

/// `a, b and c` for an error message.
pub(crate) fn list(paths: &[PathBuf]) -> String {
    let mut out = String::new();
    for (index, path) in paths.iter().enumerate() {
        let separator = match index {
            0 => "",
            _ if index + 1 == paths.len() => " and ",
            _ => ", ",
        };
        let _ = write!(out, "{separator}{}", path.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_written_0600_and_certificates_0644() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("a.key");
        let cert = dir.path().join("a.pem");
        write_file(&key, b"secret", KEY_FILE_MODE, false).unwrap();
        write_file(&cert, b"public", CERT_FILE_MODE, false).unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&cert), 0o644);
        assert!(!readable_by_others(&key));
        assert!(readable_by_others(&cert));
    }

    #[test]
    fn an_existing_file_is_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        fs::write(&path, "old").unwrap();
        let error = write_file(&path, b"new", KEY_FILE_MODE, false).unwrap_err();
        assert!(matches!(error, TlsError::Exists { .. }), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        write_file(&path, b"new", KEY_FILE_MODE, true).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_created_directory_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let created = dir.path().join("tls");
        create_dir(&created).unwrap();
        assert_eq!(mode(&created), 0o700);
    }

    #[test]
    fn a_key_is_not_a_certificate_and_garbage_is_neither() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("x.key");
        fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let error = read_certs(&key).unwrap_err().to_string();
        assert!(error.contains("x.key"), "{error}");
        assert!(error.contains("this is a private key"), "{error}");
        let junk = dir.path().join("junk.pem");
        fs::write(&junk, "hello").unwrap();
        let error = read_cert(&junk).unwrap_err().to_string();
        assert!(error.contains("junk.pem: not a certificate"), "{error}");
        let error = read_key(&junk).unwrap_err().to_string();
        assert!(error.contains("junk.pem: not a private key"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_file_is_not_read_to_its_end() {
        let error = read_certs(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(error, TlsError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn lists_read_as_prose() {
        let paths: Vec<PathBuf> = ["a", "b", "c"].iter().map(PathBuf::from).collect();
        assert_eq!(list(&paths[..1]), "a");
        assert_eq!(list(&paths[..2]), "a and b");
        assert_eq!(list(&paths), "a, b and c");
    }
}
