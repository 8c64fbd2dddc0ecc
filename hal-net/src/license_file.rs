//! License files on disk: reading one with the parser's size limit, and replacing one
//! safely when a tool rewrites it.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hal_core::license::{License, LicenseErrorKind, LicenseErrors, limits, parse};

/// The most symbolic links followed from an output path to the file it names (as the
/// kernel's `ELOOP` limit does).
const SYMLINK_HOPS_MAX: usize = 40;

/// Why a license file could not be loaded or saved.
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
    #[error("{path}: more than {SYMLINK_HOPS_MAX} symbolic links in a row")]
    SymlinkLoop { path: String },
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> LicenseFileError + '_ {
    move |source| LicenseFileError::Io {
        path: path.display().to_string(),
        source,
    }
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
    let io = io_error(path);
    let file = File::open(path).map_err(&io)?;
    let size = file.metadata().map_err(&io)?.len();
    // One byte past the limit is enough for the parser to report the file as too large.
    let cap = u64::try_from(limits::FILE_BYTES_MAX + 1).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(cap).read_to_end(&mut bytes).map_err(&io)?;
    let license = parse(&name, &bytes).map_err(|mut errors| {
        // The parser saw only the first bytes; report the file's real size.
        for error in &mut errors.errors {
            if let LicenseErrorKind::FileTooLarge { size: seen, .. } = &mut error.kind {
                *seen = usize::try_from(size).unwrap_or(usize::MAX);
            }
        }
        LicenseFileError::Invalid(errors)
    })?;
    // The parser accepted the bytes, so they are UTF-8. The text is kept whole, a leading
    // byte-order mark included, so that a rewritten file keeps it.
    let text = String::from_utf8(bytes).map_err(|e| io(std::io::Error::other(e)))?;
    Ok(LoadedLicense { text, license })
}

/// Replaces the file at `path` with `bytes`, and returns the path of the file written.
///
/// A symbolic link is followed, so the file it points to is replaced and the link stays.
/// The bytes go to a temporary file beside it, which is synced and then renamed over it:
/// a reader sees the old file or the new one, never half of one, and a failure leaves the
/// old file as it was. The new file keeps the old one's permissions; a file that did not
/// exist gets the usual ones (0666 less the umask).
pub fn save(path: &Path, bytes: &[u8]) -> Result<PathBuf, LicenseFileError> {
    let target = follow_symlinks(path)?;
    replace(&target, bytes)?;
    Ok(target)
}

/// Replaces the file at `target`, which is no symbolic link, as [`save`] says.
fn replace(target: &Path, bytes: &[u8]) -> Result<(), LicenseFileError> {
    let io = io_error(target);
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".hal-net-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir).map_err(&io)?;
    match fs::metadata(target) {
        Ok(old) => temp
            .as_file()
            .set_permissions(old.permissions())
            .map_err(&io)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    temp.write_all(bytes).map_err(&io)?;
    temp.as_file().sync_all().map_err(&io)?;
    temp.persist(target).map_err(|e| io(e.error))?;
    sync_dir(dir);
    Ok(())
}

/// The path `path` leads to through any symbolic links, which need not exist yet.
fn follow_symlinks(path: &Path) -> Result<PathBuf, LicenseFileError> {
    let mut current = path.to_path_buf();
    for _ in 0..SYMLINK_HOPS_MAX {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current).map_err(io_error(&current))?;
                // A relative link is relative to the directory the link is in.
                current = match current.parent() {
                    Some(dir) => dir.join(link),
                    None => link,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(io_error(&current)(e)),
        }
    }
    Err(LicenseFileError::SymlinkLoop {
        path: path.display().to_string(),
    })
}

/// Makes a rename in `dir` durable. Best effort: not every system can sync a directory,
/// and the file itself is already synced.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_replaces_a_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lic");
        fs::write(&path, "old").unwrap();
        assert_eq!(save(&path, b"new").unwrap(), path);
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.lic"]);
    }

    #[cfg(unix)]
    #[test]
    fn save_keeps_the_permissions_of_the_file_it_replaces() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lic");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        save(&path, b"new").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        // A new file is not left at the temporary file's 0600.
        let fresh = dir.path().join("b.lic");
        save(&fresh, b"new").unwrap();
        let mode = fs::metadata(&fresh).unwrap().permissions().mode();
        assert_ne!(mode & 0o044, 0, "mode {mode:o}");
    }

    #[cfg(unix)]
    #[test]
    fn save_writes_through_symbolic_links() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.lic");
        fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink("real.lic", dir.path().join("hop.lic")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("hop.lic"), dir.path().join("link.lic"))
            .unwrap();
        let link = dir.path().join("link.lic");
        assert_eq!(save(&link, b"new").unwrap(), real);
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        // A dangling link gets its target created.
        std::os::unix::fs::symlink("later.lic", dir.path().join("dangling.lic")).unwrap();
        save(&dir.path().join("dangling.lic"), b"x").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("later.lic")).unwrap(),
            "x"
        );
        // A loop is an error, not a hang.
        std::os::unix::fs::symlink("loop.lic", dir.path().join("loop.lic")).unwrap();
        assert!(matches!(
            save(&dir.path().join("loop.lic"), b"x"),
            Err(LicenseFileError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn a_byte_order_mark_is_kept_in_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bom.lic");
        fs::write(&path, "\u{feff}FEATURE a {\n VENDOR = x\n}\n").unwrap();
        let loaded = load(&path).unwrap();
        assert!(loaded.text.starts_with('\u{feff}'));
        assert_eq!(loaded.license.features.len(), 1);
    }
}
