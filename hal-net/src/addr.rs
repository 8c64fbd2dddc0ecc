//! Server addresses as operators write them, in the LM-X style `port@host`
//! (`6200@lic1.example.com`, `6200@127.0.0.1`, `6200@[::1]`), and the client's license
//! path: one server, or the three servers of a triad, separated by `;` or `,`
//! (`6200@lic1;6200@lic2;6200@lic3`).
//!
//! This module only checks the text. It resolves no names and opens no sockets:
//! [`ServerAddr::connect_string`] gives the text `TcpStream::connect` expects.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use hal_core::client::PATH_MAX;

/// The environment variable a client reads its license path from when no
/// `--license-path` is given.
pub const LICENSE_PATH_VAR: &str = "HAL_LICENSE_PATH";

/// The longest host name DNS allows.
const HOST_CHARS_MAX: usize = 253;

/// What is wrong with the text of one server address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    #[error("a server address cannot be empty; write port@host, e.g. 6200@lic1.example.com")]
    Empty,
    #[error("'{text}' has white space in it; write port@host, e.g. 6200@lic1.example.com")]
    Whitespace { text: String },
    #[error("'{text}' has no '@'; write port@host, e.g. 6200@lic1.example.com")]
    MissingAt { text: String },
    #[error("'{text}': port '{port}' is not a number from 1 to 65535")]
    BadPort { text: String, port: String },
    #[error("'{text}' has no host after the '@'")]
    EmptyHost { text: String },
    #[error("'{text}': host '{host}' {reason}")]
    BadHost {
        text: String,
        host: String,
        reason: &'static str,
    },
}

/// One license server's address: a TCP port and a host name or IP address.
///
/// The host is kept as written (an IPv6 address without its brackets); nothing is
/// resolved here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerAddr {
    port: u16,
    host: String,
}

impl ServerAddr {
    /// Parses `port@host`. The host is a DNS name, an IPv4 address, or an IPv6 address
    /// with or without brackets (`6200@[::1]` and `6200@::1` are the same).
    pub fn parse(text: &str) -> Result<ServerAddr, AddrError> {
        if text.is_empty() {
            return Err(AddrError::Empty);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(AddrError::Whitespace { text: text.into() });
        }
        let Some((port, host)) = text.split_once('@') else {
            return Err(AddrError::MissingAt { text: text.into() });
        };
        let port = parse_port(port).ok_or_else(|| AddrError::BadPort {
            text: text.into(),
            port: port.into(),
        })?;
        let host = parse_host(host).map_err(|reason| match reason {
            None => AddrError::EmptyHost { text: text.into() },
            Some(reason) => AddrError::BadHost {
                text: text.into(),
                host: host.into(),
                reason,
            },
        })?;
        Ok(ServerAddr { port, host })
    }

    /// `port@127.0.0.1`: a server on this machine (the development cluster, the
    /// benchmarks).
    pub fn loopback(port: u16) -> ServerAddr {
        ServerAddr {
            port,
            host: "127.0.0.1".to_owned(),
        }
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host as written, an IPv6 address without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `host:port`, with an IPv6 address in brackets: the form `TcpStream::connect` and
    /// `ToSocketAddrs` take.
    pub fn connect_string(&self) -> String {
        if self.is_ipv6() {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether two addresses name the same server as written: host names compare
    /// without regard to case, as DNS does.
    pub fn same_server(&self, other: &ServerAddr) -> bool {
        self.port == other.port && self.host.eq_ignore_ascii_case(&other.host)
    }

    fn is_ipv6(&self) -> bool {
        // Only an IPv6 address passes `parse_host` with a ':' in it.
        self.host.contains(':')
    }
}

/// Digits only: `u16::from_str` would also take a leading `+`.
fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u16>().ok().filter(|port| *port != 0)
}

/// The host without brackets, or why it is refused (`None`: it is empty).
fn parse_host(text: &str) -> Result<String, Option<&'static str>> {
    if text.is_empty() {
        return Err(None);
    }
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(Some("has a '[' without a closing ']'"))?;
        return parse_ipv6(inner);
    }
    if text.contains(':') {
        return parse_ipv6(text);
    }
    if text.len() > HOST_CHARS_MAX {
        return Err(Some("is longer than 253 characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !text.chars().all(allowed) {
        return Err(Some(
            "is not a host name (letters, digits, '-', '.', '_') or an IP address",
        ));
    }
    Ok(text.into())
}

fn parse_ipv6(text: &str) -> Result<String, Option<&'static str>> {
    match text.parse::<Ipv6Addr>() {
        Ok(_) => Ok(text.into()),
        Err(_) => Err(Some("is not an IPv6 address")),
    }
}

impl FromStr for ServerAddr {
    type Err = AddrError;

    fn from_str(text: &str) -> Result<ServerAddr, AddrError> {
        ServerAddr::parse(text)
    }
}

impl fmt::Display for ServerAddr {
    /// `port@host`, with an IPv6 address in brackets so that the text reads unambiguously
    /// and parses back to the same address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ipv6() {
            write!(f, "{}@[{}]", self.port, self.host)
        } else {
            write!(f, "{}@{}", self.port, self.host)
        }
    }
}

/// What is wrong with a license path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LicensePathError {
    #[error(
        "no license path: pass --license-path or set {LICENSE_PATH_VAR}, e.g. \
         6200@lic1;6200@lic2;6200@lic3"
    )]
    NotGiven,
    #[error("the license path is empty; write e.g. 6200@lic1;6200@lic2;6200@lic3")]
    Empty,
    #[error("license path entry {number} is empty (two separators in a row in '{text}')")]
    EmptyEntry { number: usize, text: String },
    #[error("license path entry {number}: {source}")]
    Entry {
        number: usize,
        #[source]
        source: AddrError,
    },
    #[error(
        "the license path has {count} entries; at most {PATH_MAX} (one server, or the three \
         servers of a triad)"
    )]
    TooMany { count: usize },
    #[error("{LICENSE_PATH_VAR} is not valid UTF-8")]
    VarNotUnicode,
    #[error("{LICENSE_PATH_VAR}: {source}")]
    FromVar {
        #[source]
        source: Box<LicensePathError>,
    },
}

/// A client's license path: the servers to ask, 1 to [`PATH_MAX`] of them, in the order
/// written (a triad's servers in role order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensePath(Vec<ServerAddr>);

impl LicensePath {
    /// Parses entries separated by `;` or `,` (LM-X accepts both). White space around an
    /// entry and empty pieces at either end (`6200@a;`) are ignored.
    pub fn parse(text: &str) -> Result<LicensePath, LicensePathError> {
        let pieces: Vec<&str> = text.split([';', ',']).map(str::trim).collect();
        let first = pieces.iter().position(|p| !p.is_empty());
        let last = pieces.iter().rposition(|p| !p.is_empty());
        let (Some(first), Some(last)) = (first, last) else {
            return Err(LicensePathError::Empty);
        };
        let entries = &pieces[first..=last];
        if entries.len() > PATH_MAX {
            return Err(LicensePathError::TooMany {
                count: entries.len(),
            });
        }
        let parse_entry = |(index, piece): (usize, &&str)| {
            let number = index + 1;
            if piece.is_empty() {
                return Err(LicensePathError::EmptyEntry {
                    number,
                    text: text.into(),
                });
            }
            ServerAddr::parse(piece).map_err(|source| LicensePathError::Entry { number, source })
        };
        let addrs = entries.iter().enumerate().map(parse_entry);
        Ok(LicensePath(addrs.collect::<Result<_, _>>()?))
    }

    /// The path given on the command line (`arg`), else the one in `HAL_LICENSE_PATH`.
    pub fn from_env_or(arg: Option<&str>) -> Result<LicensePath, LicensePathError> {
        Self::from_arg_or_var(arg, std::env::var_os(LICENSE_PATH_VAR))
    }

    /// [`LicensePath::from_env_or`] with the variable's value passed in, so tests need
    /// not change the process environment.
    fn from_arg_or_var(
        arg: Option<&str>,
        var: Option<std::ffi::OsString>,
    ) -> Result<LicensePath, LicensePathError> {
        if let Some(arg) = arg {
            return LicensePath::parse(arg);
        }
        let var = var.ok_or(LicensePathError::NotGiven)?;
        let text = var.to_str().ok_or(LicensePathError::VarNotUnicode)?;
        LicensePath::parse(text).map_err(|source| LicensePathError::FromVar {
            source: Box::new(source),
        })
    }

    /// The servers, in the order written.
    pub fn addrs(&self) -> &[ServerAddr] {
        &self.0
    }

    /// How many servers: 1 to [`PATH_MAX`].
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a license path has at least one server. (Clippy wants it beside
    /// `len`.)
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for LicensePath {
    type Err = LicensePathError;

    fn from_str(text: &str) -> Result<LicensePath, LicensePathError> {
        LicensePath::parse(text)
    }
}

impl fmt::Display for LicensePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, addr) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(";")?;
            }
            write!(f, "{addr}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> ServerAddr {
        ServerAddr::parse(text).unwrap()
    }

    #[test]
    fn names_and_ipv4_addresses_parse_and_print_back() {
        let a = addr("6200@lic1.example.com");
        assert_eq!((a.port(), a.host()), (6200, "lic1.example.com"));
        assert_eq!(a.to_string(), "6200@lic1.example.com");
        assert_eq!(a.connect_string(), "lic1.example.com:6200");
        assert_eq!(addr("1@127.0.0.1").connect_string(), "127.0.0.1:1");
        assert_eq!(addr("65535@h").port(), 65535);
        assert_eq!(addr("06200@h").port(), 6200);
    }

    #[test]
    fn ipv6_with_or_without_brackets_is_one_address() {
        assert_eq!(addr("6200@[::1]"), addr("6200@::1"));
        let a = addr("6200@::1");
        assert_eq!(a.host(), "::1");
        assert_eq!(a.to_string(), "6200@[::1]");
        assert_eq!(a.connect_string(), "[::1]:6200");
        assert_eq!(addr(&a.to_string()), a);
        assert!(a.connect_string().parse::<std::net::SocketAddr>().is_ok());
    }

    #[test]
    fn same_server_ignores_host_case_only() {
        assert!(addr("6200@LIC1").same_server(&addr("6200@lic1")));
        assert!(!addr("6200@lic1").same_server(&addr("6201@lic1")));
    }

    #[test]
    fn each_kind_of_bad_address_says_what_is_wrong() {
        let err = |text: &str| ServerAddr::parse(text).unwrap_err();
        assert_eq!(err(""), AddrError::Empty);
        assert!(matches!(err("6200@ lic1"), AddrError::Whitespace { .. }));
        assert!(matches!(err("lic1:6200"), AddrError::MissingAt { .. }));
        assert!(matches!(err("@lic1"), AddrError::BadPort { .. }));
        assert!(matches!(err("0@lic1"), AddrError::BadPort { .. }));
        assert!(matches!(err("65536@lic1"), AddrError::BadPort { .. }));
        assert!(matches!(err("+62@lic1"), AddrError::BadPort { .. }));
        assert!(matches!(err("62x@lic1"), AddrError::BadPort { .. }));
        assert!(matches!(err("6200@"), AddrError::EmptyHost { .. }));
        assert!(matches!(err("6200@a@b"), AddrError::BadHost { .. }));
        assert!(matches!(err("6200@[::1"), AddrError::BadHost { .. }));
        assert!(matches!(err("6200@[lic1]"), AddrError::BadHost { .. }));
        assert!(matches!(err("6200@1:2:3"), AddrError::BadHost { .. }));
        assert!(matches!(
            err(&format!("6200@{}", "a".repeat(254))),
            AddrError::BadHost { .. }
        ));
        assert_eq!(
            err("70000@lic1").to_string(),
            "'70000@lic1': port '70000' is not a number from 1 to 65535"
        );
        assert_eq!(
            err("6200@").to_string(),
            "'6200@' has no host after the '@'"
        );
    }

    #[test]
    fn license_paths_take_semicolons_commas_and_spaces() {
        let path = LicensePath::parse(" 6200@a ; 6201@b,6202@[::1] ;").unwrap();
        assert_eq!(path.len(), 3);
        assert_eq!(path.addrs()[2].host(), "::1");
        assert_eq!(path.to_string(), "6200@a;6201@b;6202@[::1]");
        assert_eq!(LicensePath::parse(&path.to_string()), Ok(path));
        assert_eq!(LicensePath::parse(",6200@a").map(|p| p.len()), Ok(1));
    }

    #[test]
    fn bad_license_paths_name_the_entry() {
        let err = |text: &str| LicensePath::parse(text).unwrap_err();
        assert_eq!(err(""), LicensePathError::Empty);
        assert_eq!(err(" ; ,"), LicensePathError::Empty);
        assert_eq!(
            err("1@a;2@b;3@c;4@d"),
            LicensePathError::TooMany { count: 4 }
        );
        assert!(matches!(
            err("1@a;;3@c"),
            LicensePathError::EmptyEntry { number: 2, .. }
        ));
        assert_eq!(
            err("6200@a;6200b").to_string(),
            "license path entry 2: '6200b' has no '@'; write port@host, e.g. \
             6200@lic1.example.com"
        );
    }

    #[test]
    fn the_argument_wins_over_the_variable_and_a_missing_path_says_how_to_give_one() {
        let var = Some(std::ffi::OsString::from("1@var"));
        let from = |arg, var| LicensePath::from_arg_or_var(arg, var);
        assert_eq!(
            from(Some("1@arg"), var.clone()).unwrap().addrs()[0].host(),
            "arg"
        );
        assert_eq!(from(None, var).unwrap().addrs()[0].host(), "var");
        let missing = from(None, None).unwrap_err().to_string();
        assert!(missing.contains("--license-path"), "{missing}");
        assert!(missing.contains("HAL_LICENSE_PATH"), "{missing}");
        let bad = from(None, Some("1@a;x".into())).unwrap_err().to_string();
        assert!(
            bad.starts_with("HAL_LICENSE_PATH: license path entry 2:"),
            "{bad}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_variable_that_is_not_unicode_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        let var = std::ffi::OsString::from_vec(vec![0xff]);
        assert_eq!(
            LicensePath::from_arg_or_var(None, Some(var)),
            Err(LicensePathError::VarNotUnicode)
        );
    }
}
