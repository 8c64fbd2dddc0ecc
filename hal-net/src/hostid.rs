//! This machine's HostID: the value a HAL feature can be locked to (DESIGN §2), written
//! LM-X style as 12 lower-case hex digits without colons (`0a1b2c3d4e5f`).
//!
//! The HostID is the MAC address of a network interface, read from
//! `/sys/class/net/*/address` (Linux). Interfaces are taken in name order, loopback and
//! all-zero addresses skipped. Interfaces backed by a device (with a `device` entry in
//! sysfs) come before virtual ones: `docker0`, `br-*` and `veth*` sort before `eth0` and
//! `enp*`, and their addresses are made up anew when they are re-created, so taking them
//! first would change the HostID under a running license. A machine without any such
//! interface falls back to the first 12 hex digits of `/etc/machine-id`.
//!
//! An operator can always override the result with `hostid` in the server config; this
//! module does not read the config.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use hal_core::HostId;

/// The sysfs `type` of a loopback interface (`ARPHRD_LOOPBACK`).
const ARPHRD_LOOPBACK: &str = "772";
/// sysfs attributes and machine-id are a few bytes; read no more than this of each.
const ATTRIBUTE_BYTES_MAX: u64 = 4096;
/// The most interfaces looked at (a container host can have thousands of `veth`s).
const INTERFACES_MAX: usize = 65_536;
/// How many hex digits of a MAC address or machine-id make a HostID.
const HOSTID_HEX_DIGITS: usize = 12;

/// Why no HostID could be worked out; says what was tried and why each failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostIdLookupError {
    #[error(
        "cannot work out this machine's HostID: {interfaces}; and {machine_id}. Set `hostid` \
         in the server config"
    )]
    NotFound {
        interfaces: String,
        machine_id: String,
    },
}

/// This machine's HostID. See the module documentation for where it comes from.
pub fn this_machine() -> Result<HostId, HostIdLookupError> {
    from_sysfs(Path::new("/"))
}

/// The HostID as [`this_machine`] finds it, with `root` standing for `/`, so that tests
/// can use a fake tree.
fn from_sysfs(root: &Path) -> Result<HostId, HostIdLookupError> {
    let interfaces = match first_mac(&root.join("sys/class/net")) {
        Ok(hex) => return hostid(&hex),
        Err(why) => why,
    };
    let machine_id = match machine_id(&root.join("etc/machine-id")) {
        Ok(hex) => return hostid(&hex),
        Err(why) => why,
    };
    Err(HostIdLookupError::NotFound {
        interfaces,
        machine_id,
    })
}

fn hostid(hex: &str) -> Result<HostId, HostIdLookupError> {
    // 12 hex digits always make a valid HostId; this only avoids a panic path.
    HostId::parse(hex).map_err(|why| HostIdLookupError::NotFound {
        interfaces: format!("'{hex}': {why}"),
        machine_id: "not tried".into(),
    })
}

/// The MAC address (12 hex digits) of the first suitable interface in `dir`, or why there
/// is none.
fn first_mac(dir: &Path) -> Result<String, String> {
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .take(INTERFACES_MAX)
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut virtual_mac = None;
    for name in &names {
        let interface = dir.join(name);
        let Some(mac) = interface_mac(name, &interface) else {
            continue;
        };
        if interface.join("device").exists() {
            return Ok(mac);
        }
        virtual_mac.get_or_insert(mac);
    }
    virtual_mac.ok_or_else(|| {
        format!(
            "none of the {} network interfaces in {} has a MAC address (loopback and \
             all-zero addresses do not count)",
            names.len(),
            dir.display()
        )
    })
}

/// The interface's MAC address, unless it is loopback, has none, or it is all zeros.
fn interface_mac(name: &str, interface: &Path) -> Option<String> {
    if name == "lo" {
        return None;
    }
    let kind = read_small(&interface.join("type")).unwrap_or_default();
    if kind.trim() == ARPHRD_LOOPBACK {
        return None;
    }
    parse_mac(&read_small(&interface.join("address")).ok()?)
}

/// `aa:bb:cc:dd:ee:ff` as 12 lower-case hex digits; `None` for anything else (InfiniBand
/// and tunnel addresses have other lengths) and for the all-zero address.
fn parse_mac(text: &str) -> Option<String> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    let is_byte = |part: &&str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_hexdigit());
    if parts.len() != 6 || !parts.iter().all(is_byte) {
        return None;
    }
    let hex = parts.concat().to_ascii_lowercase();
    (hex != "000000000000").then_some(hex)
}

/// The first 12 hex digits of the machine-id file, or why they cannot be had.
fn machine_id(path: &Path) -> Result<String, String> {
    let text = read_small(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let hex: String = text.trim().chars().take(HOSTID_HEX_DIGITS).collect();
    if hex.len() != HOSTID_HEX_DIGITS || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{} does not start with {HOSTID_HEX_DIGITS} hex digits",
            path.display()
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

fn read_small(path: &Path) -> io::Result<String> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(ATTRIBUTE_BYTES_MAX)
        .read_to_end(&mut bytes)?;
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake root with the given interfaces: (name, address, type, has a device).
    fn fake_root(interfaces: &[(&str, &str, &str, bool)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let net = root.path().join("sys/class/net");
        fs::create_dir_all(&net).unwrap();
        for (name, address, kind, device) in interfaces {
            let dir = net.join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("address"), format!("{address}\n")).unwrap();
            fs::write(dir.join("type"), format!("{kind}\n")).unwrap();
            if *device {
                fs::create_dir(dir.join("device")).unwrap();
            }
        }
        root
    }

    fn write_machine_id(root: &Path, text: &str) {
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/machine-id"), text).unwrap();
    }

    fn found(root: &tempfile::TempDir) -> String {
        from_sysfs(root.path()).unwrap().to_string()
    }

    #[test]
    fn the_first_device_interface_by_name_gives_the_hostid() {
        let root = fake_root(&[
            ("lo", "00:00:00:00:00:00", "772", false),
            ("eth1", "0A:1B:2C:3D:4E:60", "1", true),
            ("eth0", "0A:1B:2C:3D:4E:5F", "1", true),
            ("docker0", "02:42:ac:11:00:02", "1", false),
        ]);
        assert_eq!(found(&root), "0a1b2c3d4e5f");
    }

    #[test]
    fn loopback_zero_and_odd_addresses_are_skipped() {
        let root = fake_root(&[
            ("a-loop", "00:11:22:33:44:55", "772", true),
            ("b-zero", "00:00:00:00:00:00", "1", true),
            ("c-ib", "80:00:02:08:fe:80:00:00:00:00", "32", true),
            ("d-garbage", "zz:11:22:33:44:55", "1", true),
            ("e-good", "00:11:22:33:44:66", "1", true),
        ]);
        assert_eq!(found(&root), "001122334466");
    }

    #[test]
    fn a_virtual_interface_serves_when_there_is_nothing_else() {
        let root = fake_root(&[
            ("lo", "00:00:00:00:00:00", "772", false),
            ("veth1", "02:42:ac:11:00:03", "1", false),
            ("docker0", "02:42:ac:11:00:02", "1", false),
        ]);
        assert_eq!(found(&root), "0242ac110002");
    }

    #[test]
    fn without_a_mac_the_machine_id_serves() {
        let root = fake_root(&[("lo", "00:00:00:00:00:00", "772", false)]);
        write_machine_id(root.path(), "0A1B2C3D4E5F60718293a4b5c6d7e8f9\n");
        assert_eq!(found(&root), "0a1b2c3d4e5f");
        // No sysfs at all (a container without /sys) works too.
        let bare = tempfile::tempdir().unwrap();
        write_machine_id(bare.path(), "00112233445566778899aabbccddeeff");
        assert_eq!(found(&bare), "001122334455");
    }

    #[test]
    fn when_nothing_works_the_error_says_what_was_tried() {
        let root = fake_root(&[("lo", "00:00:00:00:00:00", "772", false)]);
        let error = from_sysfs(root.path()).unwrap_err().to_string();
        assert!(
            error.contains("none of the 1 network interfaces"),
            "{error}"
        );
        assert!(error.contains("etc/machine-id"), "{error}");
        assert!(
            error.contains("Set `hostid` in the server config"),
            "{error}"
        );

        write_machine_id(root.path(), "0123456789x\n");
        let error = from_sysfs(root.path()).unwrap_err().to_string();
        assert!(
            error.contains("does not start with 12 hex digits"),
            "{error}"
        );
    }

    #[test]
    fn mac_addresses_parse_only_in_the_usual_form() {
        assert_eq!(
            parse_mac("0a:1B:2c:3d:4e:5f\n").as_deref(),
            Some("0a1b2c3d4e5f")
        );
        assert_eq!(parse_mac("00:00:00:00:00:00"), None);
        assert_eq!(parse_mac("0a:1b:2c:3d:4e"), None);
        assert_eq!(parse_mac("0a1b2c3d4e5f"), None);
        assert_eq!(parse_mac("0a:1b:2c:3d:4e:5"), None);
        assert_eq!(parse_mac(""), None);
    }

    #[test]
    fn this_machine_never_panics() {
        // Whatever the test machine has, the answer is a HostID or an error that says why.
        match this_machine() {
            Ok(id) => assert_eq!(id.as_str().len(), HOSTID_HEX_DIGITS),
            Err(error) => assert!(error.to_string().contains("HostID")),
        }
    }
}
