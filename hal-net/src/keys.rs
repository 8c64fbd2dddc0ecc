//! The vendor's ed25519 key pair on disk: `vendor.key` (private, PKCS#8 PEM, mode 0600)
//! and `vendor.pub` (public, SubjectPublicKeyInfo PEM). Both are the standard formats, so
//! `openssl pkey -in vendor.key -text` can read them too.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

/// The private key's file name inside a key directory.
pub const PRIVATE_KEY_FILE: &str = "vendor.key";
/// The public key's file name inside a key directory.
pub const PUBLIC_KEY_FILE: &str = "vendor.pub";
/// Key files are a few hundred bytes; anything much larger is not a key.
const KEY_FILE_BYTES_MAX: u64 = 16 * 1024;

/// What can go wrong with a key file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("key file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} already exists; keygen never overwrites a vendor key (licenses signed with it \
         would stop verifying). Pass --force to replace it"
    )]
    Exists { path: PathBuf },
    #[error("{path}: the operating system's random generator failed: {reason}")]
    Random { path: PathBuf, reason: String },
    #[error(
        "{path}: not an ed25519 {what} key in PEM form (as written by `hal-net license \
         keygen`){hint}"
    )]
    Malformed {
        path: PathBuf,
        what: &'static str,
        hint: &'static str,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes a new vendor key pair in `dir` (created if missing) and returns the paths of the
/// private and public key files. Refuses to overwrite existing keys unless `force`.
pub fn generate(dir: &Path, force: bool) -> Result<(PathBuf, PathBuf), KeyError> {
    let private_path = dir.join(PRIVATE_KEY_FILE);
    let public_path = dir.join(PUBLIC_KEY_FILE);
    if !force {
        for path in [&private_path, &public_path] {
            if path.exists() {
                return Err(KeyError::Exists { path: path.clone() });
            }
        }
    }
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| KeyError::Random {
        path: private_path.clone(),
        reason: e.to_string(),
    })?;
    let key = SigningKey::from_bytes(&secret);
    let malformed = |path: &Path, what| KeyError::Malformed {
        path: path.to_path_buf(),
        what,
        hint: "",
    };
    let private_pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| malformed(&private_path, "private"))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|_| malformed(&public_path, "public"))?;
    write_file(&private_path, private_pem.as_bytes(), 0o600)?;
    write_file(&public_path, public_pem.as_bytes(), 0o644)?;
    Ok((private_path, public_path))
}

/// Writes `bytes` to `path` with `mode`, replacing what was there, and syncs it.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(mode);
        // `mode` applies only when the file is created; set it on an old file too.
        if path.exists() {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_error(path))?;
        }
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(bytes).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

/// Reads a key file of at most [`KEY_FILE_BYTES_MAX`] bytes as text. The limit holds while
/// reading, not by the size the file claims, so a device or a pipe (`/dev/zero`, say) is
/// refused rather than read forever.
fn read_small(path: &Path, what: &'static str) -> Result<String, KeyError> {
    let malformed = |hint| KeyError::Malformed {
        path: path.to_path_buf(),
        what,
        hint,
    };
    let file = File::open(path).map_err(io_error(path))?;
    let mut bytes = Vec::new();
    file.take(KEY_FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > KEY_FILE_BYTES_MAX {
        return Err(malformed("; the file is far too large to be a key"));
    }
    String::from_utf8(bytes).map_err(|_| malformed("; the file is not text"))
}

/// Reads the vendor's private key.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = read_small(path, "private")?;
    SigningKey::from_pkcs8_pem(&text).map_err(|_| KeyError::Malformed {
        path: path.to_path_buf(),
        what: "private",
        hint: if text.contains("PUBLIC KEY") {
            "; this is a public key: pass the private key vendor.key"
        } else {
            ""
        },
    })
}

/// Reads the vendor's public key.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = read_small(path, "public")?;
    VerifyingKey::from_public_key_pem(&text).map_err(|_| KeyError::Malformed {
        path: path.to_path_buf(),
        what: "public",
        hint: if text.contains("PRIVATE KEY") {
            "; this is the private key: pass the public key vendor.pub, and keep the private \
             key away from servers"
        } else {
            ""
        },
    })
}

/// Whether others than the owner may read `path` (a private key should be 0600).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_read_back_and_match() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = generate(dir.path(), false).unwrap();
        let signing = read_signing_key(&private).unwrap();
        let verifying = read_verifying_key(&public).unwrap();
        assert_eq!(signing.verifying_key(), verifying);
        assert!(!readable_by_others(&private));
    }

    #[test]
    fn keygen_refuses_to_overwrite_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let (private, _) = generate(dir.path(), false).unwrap();
        let first = fs::read(&private).unwrap();
        assert!(matches!(
            generate(dir.path(), false),
            Err(KeyError::Exists { .. })
        ));
        assert_eq!(fs::read(&private).unwrap(), first);
        generate(dir.path(), true).unwrap();
        assert_ne!(fs::read(&private).unwrap(), first);
    }

    #[test]
    fn swapped_keys_get_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let (private, public) = generate(dir.path(), false).unwrap();
        let error = read_verifying_key(&private).unwrap_err().to_string();
        assert!(error.contains("this is the private key"), "{error}");
        let error = read_signing_key(&public).unwrap_err().to_string();
        assert!(error.contains("this is a public key"), "{error}");
    }

    #[test]
    fn junk_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk");
        fs::write(&path, "hello").unwrap();
        assert!(matches!(
            read_verifying_key(&path),
            Err(KeyError::Malformed { .. })
        ));
        fs::write(&path, vec![b'x'; 20_000]).unwrap();
        assert!(matches!(
            read_signing_key(&path),
            Err(KeyError::Malformed { .. })
        ));
        fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
        let error = read_signing_key(&path).unwrap_err().to_string();
        assert!(error.contains("not text"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_file_is_not_read_to_its_end() {
        // /dev/zero claims a size of 0 and never ends: only a bounded read returns.
        let error = read_verifying_key(Path::new("/dev/zero")).unwrap_err();
        assert!(
            error.to_string().contains("far too large to be a key"),
            "{error}"
        );
    }
}
