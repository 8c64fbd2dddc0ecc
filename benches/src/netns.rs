//! A private network for the nemesis, made of Linux network namespaces: a bridge in the
//! root namespace with an address of its own (the clients' side), and three namespaces
//! `hal-nem-RUN-1..3`, one per server, each joined to the bridge by a veth pair and given
//! an address in a private /24 (`10.X.Y.1..3`, the bridge `10.X.Y.254`).
//!
//! Each server namespace holds an nftables table whose chains the faults fill and empty:
//! `input` drops what a server receives from a peer (a cut, a one-way cut, loss; each
//! rule counts what it dropped), and
//! `nat_out` sends a server's connections to a peer through a proxy (latency). Clients
//! are never cut off: their packets come from the bridge's address, which no rule names.
//!
//! Everything made is removed when the [`Network`] is dropped, and leftovers of an
//! earlier run with the same names (one that was killed) are removed before building.
//! This module runs `ip`, `nft` and `ss`; it starts no server.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use hal_core::ServerId;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;

/// Linux's limit on an interface name's length.
const IFNAME_CHARS_MAX: usize = 15;

/// The nftables table the faults use, in each server namespace.
const TABLE: &str = "halnem";

/// The table, made once per namespace: chains that accept everything until a fault adds
/// a rule.
const TABLE_SCRIPT: &str = "table inet halnem {
  chain input { type filter hook input priority 0; policy accept; }
  chain nat_out { type nat hook output priority -100; policy accept; }
}
";

/// libfaketime, from Debian's `libfaketime` package.
pub const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Fails with what is missing unless this process can build the network: root, `ip
/// netns`, `nft` (Debian: nftables), `ss` (iproute2) and libfaketime.
pub fn check_preconditions() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("hal-load nemesis needs root (it makes network namespaces and nftables rules)");
    }
    run("ip", &["netns", "list"]).context(
        "`ip netns` does not work here (install iproute2; network namespaces must be allowed)",
    )?;
    run("nft", &["--version"]).context("nft is missing (install the nftables package)")?;
    run("ss", &["-V"]).context("ss is missing (install iproute2)")?;
    if !Path::new(LIBFAKETIME).exists() {
        bail!(
            "{LIBFAKETIME} is missing (install the libfaketime package): the clock step needs it"
        );
    }
    Ok(())
}

/// The namespaces, the bridge and the veth pairs of one run.
#[derive(Debug)]
pub struct Network {
    run: u32,
    /// The first three octets of the /24.
    prefix: [u8; 3],
}

impl Network {
    /// Builds the network of run `run` (this process's id: names apart from any other
    /// run's), removing leftovers of an earlier run of that number first.
    pub async fn build(run: u32) -> Result<Network> {
        let network = Network {
            run,
            prefix: free_prefix(run)?,
        };
        for name in [network.bridge()]
            .into_iter()
            .chain(ServerId::ALL.map(|id| network.veth_root(id)))
        {
            assert!(name.len() <= IFNAME_CHARS_MAX, "interface name {name}");
        }
        network.remove();
        // From here on, dropping the network removes what was made so far.
        network.make().await.with_context(|| {
            format!(
                "cannot build the nemesis network {}",
                network.subnet_display()
            )
        })?;
        Ok(network)
    }

    async fn make(&self) -> Result<()> {
        let bridge = self.bridge();
        let client = format!("{}/24", self.client_ip());
        run("ip", &["link", "add", &bridge, "type", "bridge"])?;
        run("ip", &["addr", "add", &client, "dev", &bridge])?;
        run("ip", &["link", "set", &bridge, "up"])?;
        for id in ServerId::ALL {
            let ns = self.namespace(id);
            let (root, inner) = (self.veth_root(id), self.veth_ns(id));
            let addr = format!("{}/24", self.server_ip(id));
            run("ip", &["netns", "add", &ns])?;
            let veth: [&str; 10] = [
                "link", "add", &root, "type", "veth", "peer", "name", &inner, "netns", &ns,
            ];
            run("ip", &veth)?;
            run("ip", &["link", "set", &root, "master", &bridge, "up"])?;
            run("ip", &["-n", &ns, "addr", "add", &addr, "dev", &inner])?;
            run("ip", &["-n", &ns, "link", "set", &inner, "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            run_async(
                &["netns", "exec", &ns, "nft", "-f", "-"],
                Some(TABLE_SCRIPT),
            )
            .await?;
        }
        Ok(())
    }

    /// Removes whatever of this run's network exists (nothing is an error here: it may
    /// not have been made, or only in part).
    fn remove(&self) {
        for id in ServerId::ALL {
            let ns = self.namespace(id);
            // A process in a namespace of this run's name was started by an earlier run
            // of that number that was killed before it could stop its servers.
            if let Ok(pids) = run("ip", &["netns", "pids", &ns]) {
                for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            // Deleting a namespace deletes the veth end inside it, and so the pair.
            let _ = run("ip", &["netns", "del", &ns]);
            let _ = run("ip", &["link", "del", &self.veth_root(id)]);
        }
        let _ = run("ip", &["link", "del", &self.bridge()]);
    }

    /// The namespace of server `id`.
    pub fn namespace(&self, id: ServerId) -> String {
        format!("hal-nem-{}-{}", self.run, id.get())
    }

    fn bridge(&self) -> String {
        format!("haln{}", self.run)
    }

    fn veth_root(&self, id: ServerId) -> String {
        format!("hn{}r{}", self.run, id.get())
    }

    fn veth_ns(&self, id: ServerId) -> String {
        format!("hn{}n{}", self.run, id.get())
    }

    /// Server `id`'s address.
    pub fn server_ip(&self, id: ServerId) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, id.get())
    }

    /// The bridge's address in the root namespace, where clients and proxies are.
    pub fn client_ip(&self) -> Ipv4Addr {
        let [a, b, c] = self.prefix;
        Ipv4Addr::new(a, b, c, 254)
    }

    /// `10.X.Y.0/24 (bridge haln RUN, namespaces hal-nem-RUN-1..3)`.
    pub fn subnet_display(&self) -> String {
        let [a, b, c] = self.prefix;
        format!(
            "{a}.{b}.{c}.0/24 (bridge {}, namespaces hal-nem-{}-1..3)",
            self.bridge(),
            self.run
        )
    }

    /// What runs a program in server `id`'s namespace: `ip` with these arguments first.
    pub fn exec_args(&self, id: ServerId) -> Vec<String> {
        vec!["netns".into(), "exec".into(), self.namespace(id)]
    }

    /// Drops, in `to`'s namespace, what it receives from `from`: all of it, or
    /// `loss_pct` percent at random.
    pub async fn drop_from(
        &self,
        to: ServerId,
        from: ServerId,
        loss_pct: Option<u8>,
    ) -> Result<()> {
        let random = match loss_pct {
            Some(pct) => format!("numgen random mod 100 < {pct} "),
            None => String::new(),
        };
        let rule = format!(
            "add rule inet {TABLE} input ip saddr {} {random}counter drop\n",
            self.server_ip(from)
        );
        self.nft(to, &rule).await
    }

    /// Packets dropped in server `id`'s namespace by the rules now in force.
    pub async fn dropped(&self, id: ServerId) -> Result<u64> {
        let ns = self.namespace(id);
        let listed = run_async(
            &[
                "netns", "exec", &ns, "nft", "list", "chain", "inet", TABLE, "input",
            ],
            None,
        )
        .await?;
        Ok(packets_counted(&listed))
    }

    /// Sends `from`'s new connections to `to`'s `port` to `proxy` instead.
    pub async fn redirect(
        &self,
        from: ServerId,
        to: ServerId,
        port: u16,
        proxy: SocketAddrV4,
    ) -> Result<()> {
        let rule = format!(
            "add rule inet {TABLE} nat_out ip daddr {} tcp dport {port} dnat ip to {proxy}\n",
            self.server_ip(to)
        );
        self.nft(from, &rule).await
    }

    /// Aborts `from`'s established connections to `to`'s `port` (both ends see a
    /// reset), so that they are dialled again under the rules now in force.
    pub async fn reset_connections(&self, from: ServerId, to: ServerId, port: u16) -> Result<()> {
        let ns = self.namespace(from);
        let dst = self.server_ip(to).to_string();
        let port = port.to_string();
        let args = [
            "netns", "exec", &ns, "ss", "-K", "dst", &dst, "dport", "=", &port,
        ];
        // ss -K also tries the listening socket and says "Invalid argument" for it; what
        // matters is that the command ran.
        run_async(&args, None).await.map(|_| ())
    }

    /// Removes every rule the faults added in server `id`'s namespace.
    pub async fn heal(&self, id: ServerId) -> Result<()> {
        let script = format!("flush chain inet {TABLE} input\nflush chain inet {TABLE} nat_out\n");
        self.nft(id, &script).await
    }

    /// Runs an nftables script in server `id`'s namespace.
    async fn nft(&self, id: ServerId, script: &str) -> Result<()> {
        let ns = self.namespace(id);
        run_async(&["netns", "exec", &ns, "nft", "-f", "-"], Some(script))
            .await
            .map(|_| ())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
        let left = run("ip", &["link", "show", &self.bridge()]).is_ok()
            || ServerId::ALL
                .iter()
                .any(|&id| run("ip", &["netns", "exec", &self.namespace(id), "true"]).is_ok());
        if left {
            eprintln!(
                "hal-load: warning: parts of the nemesis network {} are left; remove them with `ip netns del` and `ip link del`",
                self.subnet_display()
            );
        }
    }
}

/// The sum of the `counter packets N` of an nftables listing.
fn packets_counted(listing: &str) -> u64 {
    let words: Vec<&str> = listing.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "packets")
        .filter_map(|w| w[1].parse::<u64>().ok())
        .sum()
}

/// A /24 in 10.0.0.0/8 that this machine has no address or route in, chosen from `run`
/// so that runs side by side differ.
fn free_prefix(run_id: u32) -> Result<[u8; 3]> {
    let taken = format!(
        "{}\n{}",
        run("ip", &["-4", "-o", "addr", "show"])?,
        run("ip", &["-4", "route", "show", "table", "all"])?
    );
    for attempt in 0..64u32 {
        let n = run_id.wrapping_add(attempt * 7919);
        let prefix = [10, 200 + (n >> 8) as u8 % 50, n as u8];
        let [a, b, c] = prefix;
        if !taken.contains(&format!("{a}.{b}.{c}.")) {
            return Ok(prefix);
        }
    }
    bail!("no free 10.x.y.0/24 for the nemesis network")
}

/// Runs `program args`, returning its standard output; fails with its standard error.
fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    checked(program, args, &output)
}

/// Runs `ip args` with `input` on its standard input, on tokio (so the clients keep
/// running meanwhile), returning its standard output; fails with its standard error.
async fn run_async(args: &[&str], input: Option<&str>) -> Result<String> {
    let mut child = tokio::process::Command::new("ip")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run ip")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.unwrap_or("").as_bytes()).await?;
    }
    let output = child.wait_with_output().await?;
    checked("ip", args, &output)
}

fn checked(program: &str, args: &[&str], output: &std::process::Output) -> Result<String> {
    if !output.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packets_of_every_counter_are_summed() {
        let listing = "table inet halnem {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip saddr 10.1.2.1 counter packets 12 bytes 3456 drop\n\t\tip saddr 10.1.2.3 numgen random mod 100 < 20 counter packets 3 bytes 180 drop\n\t}\n}\n";
        assert_eq!(packets_counted(listing), 15);
        assert_eq!(packets_counted("table inet halnem { chain input { } }"), 0);
    }
}
