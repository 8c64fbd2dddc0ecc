//! The directory of a triad's certificates, as `hal-net tls init` writes it and
//! `hal-net tls renew` re-issues it:
//!
//! | file | what | goes to |
//! |---|---|---|
//! | `ca.pem` | the triad CA's certificate | every server and every client |
//! | `ca.key` (0600) | the CA's private key | nowhere: it stays with the administrator |
//! | `serverN.pem`, `serverN.key` (0600) | server #N's certificate and key | server #N |
//! | `admin.pem`, `admin.key` (0600) | the operators' certificate and key | operators |
//!
//! A single (non-HAL) server has only `server1.*`. Everything is made in memory and
//! checked before the first file is written; `init` writes nothing if any of its files
//! exists, unless forced.
//!
//! This module lays out files; making certificates is [`super::issue`]'s, and what a
//! server does with its files is [`super::ServerTls`]'s.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use hal_core::ServerId;
use rcgen::{Issuer, KeyPair};
use rustls::RootCertStore;
use time::OffsetDateTime;

use super::identity::CertRole;
use super::issue::{self, Issued, Validity};
use super::verify::{self, Leaf};
use super::{TlsError, files};
use crate::addr::ServerAddr;

/// The CA certificate's file name.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file name.
pub const CA_KEY_FILE: &str = "ca.key";
/// The admin certificate's file name.
pub const ADMIN_CERT_FILE: &str = "admin.pem";
/// The admin key's file name.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// `serverN.pem`: server #N's certificate file name.
pub fn server_cert_file(id: ServerId) -> String {
    format!("server{}.pem", id.get())
}

/// `serverN.key`: server #N's key file name.
pub fn server_key_file(id: ServerId) -> String {
    format!("server{}.key", id.get())
}

/// One file written, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where it was written.
    pub path: PathBuf,
    /// What it is.
    pub role: FileRole,
}

/// What a written file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileRole {
    /// `ca.pem`.
    CaCert,
    /// `ca.key`.
    CaKey,
    /// A server's or the admin's certificate.
    Cert(CertRole),
    /// A server's or the admin's private key.
    Key(CertRole),
}

/// What `init` or `renew` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// Every file written, in the order written.
    pub files: Vec<WrittenFile>,
    /// Each server's slot and the host its certificate names, in slot order.
    pub servers: Vec<(ServerId, String)>,
    /// When the server and admin certificates expire (`2027-03-01 12:00:00 UTC`).
    pub leaf_not_after: String,
    /// Things the operator should know (a validity cut short by the CA's own).
    pub notes: Vec<String>,
}

/// A new triad CA and certificates for three servers on 127.0.0.1 at `ports`, valid
/// for the default days from now, written into `dir`: the demo triad's and the
/// benchmarks'.
pub fn init_loopback(dir: &Path, ports: &[u16]) -> Result<Written, TlsError> {
    let servers: Vec<ServerAddr> = ports.iter().map(|&p| ServerAddr::loopback(p)).collect();
    let days = super::issue::LEAF_DAYS_DEFAULT;
    init(dir, &servers, days, false, SystemTime::now())
}

/// Makes a new triad CA and certificates for `servers` (one address: a single server,
/// slot 1; three: a triad in slot order) and the admin, valid `days` days from `now`
/// (the CA ten years), and writes them into `dir` (created 0700 if missing).
///
/// Without `force`, writes nothing if any of the files exists, and names them all.
pub fn init(
    dir: &Path,
    servers: &[ServerAddr],
    days: u32,
    force: bool,
    now: SystemTime,
) -> Result<Written, TlsError> {
    let hosts = slot_hosts(servers)?;
    let targets = all_paths(dir, &hosts);
    if !force {
        let existing = files::existing(&targets);
        if !existing.is_empty() {
            return Err(TlsError::Exists { paths: existing });
        }
    }
    let ca = issue::new_ca(now)?;
    let validity = Validity::days_from(now, days);
    let leaves = issue_leaves(&ca.issuer, &hosts, validity)?;
    let roots = roots_of(&ca.issued, &dir.join(CA_CERT_FILE))?;
    check_issued(dir, &leaves, &roots, now)?;
    files::create_dir(dir)?;
    let mut written = vec![
        write(
            dir,
            CA_CERT_FILE,
            &ca.issued.cert_pem,
            FileRole::CaCert,
            force,
        )?,
        write(dir, CA_KEY_FILE, &ca.issued.key_pem, FileRole::CaKey, force)?,
    ];
    written.extend(write_leaves(dir, &leaves, force)?);
    Ok(Written {
        files: written,
        servers: hosts,
        leaf_not_after: verify::format_time(validity.not_after.unix_timestamp()),
        notes: Vec::new(),
    })
}

/// Re-issues the server and admin certificates (with new keys) from the CA in `dir`,
/// keeping the CA, valid `days` days from `now` but not past the CA's own expiry.
///
/// The hosts come from `servers` if given, else from the existing server certificates
/// (`server1.pem` alone for a single server, or all three).
pub fn renew(
    dir: &Path,
    servers: Option<&[ServerAddr]>,
    days: u32,
    now: SystemTime,
) -> Result<Written, TlsError> {
    let ca_path = dir.join(CA_CERT_FILE);
    let (issuer, ca_not_after) = read_ca(&ca_path, &dir.join(CA_KEY_FILE), now)?;
    let hosts = match servers {
        Some(servers) => slot_hosts(servers)?,
        None => hosts_of_existing(dir)?,
    };
    let asked = Validity::days_from(now, days);
    let validity = asked.ending_by(ca_not_after);
    let mut notes = Vec::new();
    if validity != asked {
        notes.push(format!(
            "the certificates end when the CA in {} does, on {}, before the {days} days \
             asked; make a new triad CA (`hal-net tls init --force`) before then",
            ca_path.display(),
            verify::format_time(ca_not_after.unix_timestamp())
        ));
    }
    let leaves = issue_leaves(&issuer, &hosts, validity)?;
    let roots = verify::read_roots(&ca_path)?;
    check_issued(dir, &leaves, &roots, now)?;
    Ok(Written {
        files: write_leaves(dir, &leaves, true)?,
        servers: hosts,
        leaf_not_after: verify::format_time(validity.not_after.unix_timestamp()),
        notes,
    })
}

/// Each server's slot and host: one address is a single server (slot 1), three a triad.
fn slot_hosts(servers: &[ServerAddr]) -> Result<Vec<(ServerId, String)>, TlsError> {
    if !matches!(servers.len(), 1 | 3) {
        return Err(TlsError::ServerCount {
            count: servers.len(),
        });
    }
    Ok(ServerId::ALL
        .into_iter()
        .zip(servers)
        .map(|(id, addr)| (id, addr.host().to_owned()))
        .collect())
}

/// The hosts named by the server certificates in `dir`: `server1.pem` alone, or the
/// three of a triad.
fn hosts_of_existing(dir: &Path) -> Result<Vec<(ServerId, String)>, TlsError> {
    let mut hosts = Vec::new();
    for id in ServerId::ALL {
        let path = dir.join(server_cert_file(id));
        if !path.exists() {
            continue;
        }
        let leaf = verify::read_leaf(&path)?;
        if leaf.role != CertRole::Server(id) {
            return Err(wrong_file(&leaf, id));
        }
        let host = leaf
            .hosts
            .first()
            .cloned()
            .ok_or_else(|| TlsError::BadCertificate {
                path: path.clone(),
                reason: "it names no host; pass --servers".into(),
            })?;
        hosts.push((id, host));
    }
    let slots: Vec<u8> = hosts.iter().map(|(id, _)| id.get()).collect();
    match slots.as_slice() {
        [1] | [1, 2, 3] => Ok(hosts),
        [] => Err(TlsError::NoServerCerts {
            dir: dir.to_path_buf(),
        }),
        _ => Err(TlsError::ServerCount { count: slots.len() }),
    }
}

fn wrong_file(leaf: &Leaf, id: ServerId) -> TlsError {
    match leaf.role {
        CertRole::Server(slot) => TlsError::WrongSlot {
            path: leaf.path.clone(),
            slot,
            me: id,
        },
        role => TlsError::WrongRole {
            path: leaf.path.clone(),
            role,
            wanted: "a server's",
        },
    }
}

/// The CA's issuer, refused if `ca.key` is not the key of `ca.pem` or the CA has expired.
fn read_ca(
    ca_path: &Path,
    key_path: &Path,
    now: SystemTime,
) -> Result<(Issuer<'static, KeyPair>, OffsetDateTime), TlsError> {
    let der = files::read_cert(ca_path)?;
    let (_, key_pem) = files::read_key(key_path)?;
    let bad = |reason: String| TlsError::BadCertificate {
        path: ca_path.to_path_buf(),
        reason,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
    if !cert.is_ca() {
        return Err(bad("it is not a CA certificate".into()));
    }
    let key = KeyPair::from_pem(&key_pem).map_err(|e| TlsError::BadKey {
        path: key_path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
        return Err(TlsError::KeyMismatch {
            key: key_path.to_path_buf(),
            cert: ca_path.to_path_buf(),
        });
    }
    let not_after = cert.validity().not_after.to_datetime();
    if verify::unix_seconds(now) > not_after.unix_timestamp() {
        return Err(TlsError::Expired {
            path: ca_path.to_path_buf(),
            not_after: verify::format_time(not_after.unix_timestamp()),
            now: verify::format_time(verify::unix_seconds(now)),
        });
    }
    Ok((issue::ca_issuer(&der, &key_pem)?, not_after))
}

/// A certificate and key to write, under their file names.
struct Leaves {
    role: CertRole,
    cert_file: String,
    key_file: String,
    issued: Issued,
}

fn issue_leaves(
    issuer: &Issuer<'_, KeyPair>,
    hosts: &[(ServerId, String)],
    validity: Validity,
) -> Result<Vec<Leaves>, TlsError> {
    let mut leaves = Vec::new();
    for (id, host) in hosts {
        let role = CertRole::Server(*id);
        leaves.push(Leaves {
            role,
            cert_file: server_cert_file(*id),
            key_file: server_key_file(*id),
            issued: issue::leaf(issuer, role, Some(host), validity)?,
        });
    }
    leaves.push(Leaves {
        role: CertRole::Admin,
        cert_file: ADMIN_CERT_FILE.into(),
        key_file: ADMIN_KEY_FILE.into(),
        issued: issue::leaf(issuer, CertRole::Admin, None, validity)?,
    });
    Ok(leaves)
}

/// Every file `init` writes, for the check that none exists.
fn all_paths(dir: &Path, hosts: &[(ServerId, String)]) -> Vec<PathBuf> {
    let mut names = vec![CA_CERT_FILE.to_owned(), CA_KEY_FILE.to_owned()];
    for (id, _) in hosts {
        names.push(server_cert_file(*id));
        names.push(server_key_file(*id));
    }
    names.push(ADMIN_CERT_FILE.into());
    names.push(ADMIN_KEY_FILE.into());
    names.into_iter().map(|name| dir.join(name)).collect()
}

fn roots_of(ca: &Issued, ca_path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.der.clone())
        .map_err(|e| TlsError::BadCertificate {
            path: ca_path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(roots))
}

/// Verifies each new certificate as a handshake will, before anything is written: a
/// certificate this tool makes that a server would refuse is a bug, caught here.
fn check_issued(
    dir: &Path,
    leaves: &[Leaves],
    roots: &Arc<RootCertStore>,
    now: SystemTime,
) -> Result<(), TlsError> {
    let ca_path = dir.join(CA_CERT_FILE);
    for leaf in leaves {
        let parsed = verify::parse_leaf(&dir.join(&leaf.cert_file), leaf.issued.der.clone())?;
        assert_eq!(
            parsed.role, leaf.role,
            "a certificate names the role it was made for"
        );
        verify::check_chain(&parsed, roots, &ca_path, now)?;
    }
    Ok(())
}

fn write_leaves(
    dir: &Path,
    leaves: &[Leaves],
    replace: bool,
) -> Result<Vec<WrittenFile>, TlsError> {
    let mut written = Vec::new();
    for leaf in leaves {
        written.push(write(
            dir,
            &leaf.cert_file,
            &leaf.issued.cert_pem,
            FileRole::Cert(leaf.role),
            replace,
        )?);
        written.push(write(
            dir,
            &leaf.key_file,
            &leaf.issued.key_pem,
            FileRole::Key(leaf.role),
            replace,
        )?);
    }
    Ok(written)
}

/// Writes one file: a key 0600, a certificate 0644.
fn write(
    dir: &Path,
    name: &str,
    pem: &str,
    role: FileRole,
    replace: bool,
) -> Result<WrittenFile, TlsError> {
    let path = dir.join(name);
    let mode = match role {
        FileRole::CaKey | FileRole::Key(_) => files::KEY_FILE_MODE,
        FileRole::CaCert | FileRole::Cert(_) => files::CERT_FILE_MODE,
    };
    files::write_file(&path, pem.as_bytes(), mode, replace)?;
    Ok(WrittenFile { path, role })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::tls::ServerTls;
    use crate::tls::testing::days;

    fn addrs(text: &[&str]) -> Vec<ServerAddr> {
        text.iter().map(|t| ServerAddr::parse(t).unwrap()).collect()
    }

    fn names(written: &Written) -> Vec<String> {
        written
            .files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn init_writes_a_triad_and_each_server_loads_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let servers = addrs(&["6200@lic1.example.com", "6200@10.0.0.2", "6200@[::1]"]);
        let written = init(dir.path(), &servers, 825, false, SystemTime::now()).unwrap();
        assert_eq!(
            names(&written),
            [
                "ca.pem",
                "ca.key",
                "server1.pem",
                "server1.key",
                "server2.pem",
                "server2.key",
                "server3.pem",
                "server3.key",
                "admin.pem",
                "admin.key"
            ]
        );
        for (id, host) in [(1, "lic1.example.com"), (2, "10.0.0.2"), (3, "::1")] {
            let id = ServerId::new(id).unwrap();
            let leaf = verify::read_leaf(&dir.path().join(server_cert_file(id))).unwrap();
            assert_eq!(leaf.role, CertRole::Server(id));
            assert_eq!(leaf.hosts, [host]);
            ServerTls::load(
                &dir.path().join(CA_CERT_FILE),
                &dir.path().join(server_cert_file(id)),
                &dir.path().join(server_key_file(id)),
                id,
                SystemTime::now(),
            )
            .unwrap();
        }
    }

    #[test]
    fn one_address_is_a_single_server_and_two_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let written = init(
            dir.path(),
            &addrs(&["6200@lic"]),
            30,
            false,
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(
            names(&written),
            [
                "ca.pem",
                "ca.key",
                "server1.pem",
                "server1.key",
                "admin.pem",
                "admin.key"
            ]
        );
        let other = tempfile::tempdir().unwrap();
        let error = init(
            other.path(),
            &addrs(&["6200@a", "6200@b"]),
            30,
            false,
            SystemTime::now(),
        )
        .unwrap_err();
        assert!(
            matches!(error, TlsError::ServerCount { count: 2 }),
            "{error}"
        );
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
    }

    #[test]
    fn init_writes_nothing_over_an_existing_file_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let servers = addrs(&["6200@a", "6200@b", "6200@c"]);
        std::fs::write(dir.path().join("server2.key"), "mine").unwrap();
        std::fs::write(dir.path().join("admin.pem"), "mine").unwrap();
        let error = init(dir.path(), &servers, 30, false, SystemTime::now())
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("refusing to overwrite "), "{error}");
        assert!(error.contains("server2.key and "), "{error}");
        assert!(error.contains("admin.pem; nothing was written"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        init(dir.path(), &servers, 30, true, SystemTime::now()).unwrap();
        assert_ne!(
            std::fs::read(dir.path().join("server2.key")).unwrap(),
            b"mine"
        );
    }

    #[test]
    fn renew_keeps_the_ca_and_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let servers = addrs(&["6200@lic1", "6200@lic2", "6200@lic3"]);
        let start = SystemTime::now();
        init(dir.path(), &servers, 30, false, start).unwrap();
        let ca = std::fs::read(dir.path().join(CA_CERT_FILE)).unwrap();
        let old = std::fs::read(dir.path().join("server3.pem")).unwrap();
        // A month on, the old certificates have expired; renewing makes new ones.
        let later = start + days(31);
        let written = renew(dir.path(), None, 825, later).unwrap();
        assert_eq!(written.files.len(), 8);
        assert!(written.notes.is_empty());
        assert_eq!(std::fs::read(dir.path().join(CA_CERT_FILE)).unwrap(), ca);
        assert_ne!(std::fs::read(dir.path().join("server3.pem")).unwrap(), old);
        let leaf = verify::read_leaf(&dir.path().join("server3.pem")).unwrap();
        assert_eq!(leaf.hosts, ["lic3"]);
        let tls = ServerTls::load(
            &dir.path().join(CA_CERT_FILE),
            &dir.path().join("server3.pem"),
            &dir.path().join("server3.key"),
            ServerId::TIEBREAKER,
            later,
        )
        .unwrap();
        assert_eq!(tls.days_left(later), 825);
    }

    #[test]
    fn renew_ends_the_certificates_with_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let start = SystemTime::now();
        init(dir.path(), &addrs(&["6200@lic"]), 30, false, start).unwrap();
        let late = start + days(u64::from(issue::CA_DAYS) - 100);
        let written = renew(dir.path(), None, 825, late).unwrap();
        assert_eq!(written.notes.len(), 1, "{:?}", written.notes);
        let error = renew(
            dir.path(),
            None,
            825,
            start + days(u64::from(issue::CA_DAYS) + 1),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("ca.pem expired on"), "{error}");
    }

    #[test]
    fn renew_refuses_a_ca_key_of_another_ca() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        for d in [&dir, &other] {
            init(
                d.path(),
                &addrs(&["6200@lic"]),
                30,
                false,
                SystemTime::now(),
            )
            .unwrap();
        }
        std::fs::copy(other.path().join(CA_KEY_FILE), dir.path().join(CA_KEY_FILE)).unwrap();
        let error = renew(dir.path(), None, 30, SystemTime::now())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("ca.key is not the private key of"),
            "{error}"
        );
        let empty = tempfile::tempdir().unwrap();
        for name in [CA_CERT_FILE, CA_KEY_FILE] {
            std::fs::copy(other.path().join(name), empty.path().join(name)).unwrap();
        }
        let error = renew(empty.path(), None, 30, SystemTime::now()).unwrap_err();
        assert!(matches!(error, TlsError::NoServerCerts { .. }), "{error}");
    }
}
