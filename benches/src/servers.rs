//! The three `hal-net serve` processes of a test triad, each started from its config
//! file with its output in `serverN.log`: started, killed with SIGKILL, started again
//! from their data, watched for an early exit, and stopped (also when dropped).
//!
//! How a server is launched is a [`Launcher`]: the `hal-net` executable itself on this
//! machine's network ([`crate::triad`]), or wrapped in `ip netns exec` with a faked wall
//! clock ([`crate::nemesis`]). This module makes no files other than the logs.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hal_core::ServerId;

/// How one server's process is started: `program ARGS... serve --config FILE`, with
/// `env` added to this process's environment.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub program: PathBuf,
    /// Arguments before `serve` (`netns exec NS hal-net` when `program` is `ip`).
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

impl Launcher {
    /// `hal_net` itself, in this process's environment.
    pub fn direct(hal_net: &Path) -> Launcher {
        Launcher {
            program: hal_net.to_path_buf(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// The processes of a triad's three servers.
#[derive(Debug)]
pub struct Servers {
    dir: PathBuf,
    configs: Vec<PathBuf>,
    launchers: Vec<Launcher>,
    children: Vec<Option<Child>>,
}

impl Servers {
    /// Servers with logs in `dir`, each launched by its `launchers` entry with its
    /// `configs` entry (in slot order); none runs yet.
    pub fn new(dir: &Path, configs: Vec<PathBuf>, launchers: Vec<Launcher>) -> Servers {
        assert_eq!(configs.len(), ServerId::ALL.len(), "a config per server");
        assert_eq!(
            launchers.len(),
            ServerId::ALL.len(),
            "a launcher per server"
        );
        Servers {
            dir: dir.to_path_buf(),
            configs,
            launchers,
            children: vec![None, None, None],
        }
    }

    /// `dir/serverN.log`: server `id`'s standard output and error, kept across restarts.
    pub fn log_path(&self, id: ServerId) -> PathBuf {
        self.dir.join(format!("server{}.log", id.get()))
    }

    /// Starts server `id`; `first`: its first start, on no data (`--join-empty`). A
    /// restart goes without, as an operator's would.
    pub fn spawn(&mut self, id: ServerId, first: bool) -> Result<()> {
        let log_path = self.log_path(id);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let launcher = &self.launchers[id.index()];
        let child = Command::new(&launcher.program)
            .args(&launcher.args)
            .arg("serve")
            .arg("--config")
            .arg(&self.configs[id.index()])
            .args(first.then_some("--join-empty"))
            .env("RUST_LOG", "info")
            .envs(launcher.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", launcher.program.display()))?;
        self.children[id.index()] = Some(child);
        Ok(())
    }

    /// The process id of a running server.
    pub fn pid(&self, id: ServerId) -> Option<u32> {
        self.children[id.index()].as_ref().map(Child::id)
    }

    /// Whether server `id` was started and has not been killed or stopped.
    pub fn is_started(&self, id: ServerId) -> bool {
        self.children[id.index()].is_some()
    }

    /// SIGKILL to server `id`, and waits for it to be gone.
    pub fn kill(&mut self, id: ServerId) -> Result<()> {
        if let Some(mut child) = self.children[id.index()].take() {
            child
                .kill()
                .with_context(|| format!("cannot kill server {id}"))?;
            child.wait()?;
        }
        Ok(())
    }

    /// SIGTERM to server `id` (an operator's `systemctl stop`), and waits for it to exit
    /// (SIGKILL after 10 s, which is an error); how long it took.
    pub fn terminate(&mut self, id: ServerId) -> Result<Duration> {
        let started = Instant::now();
        let Some(mut child) = self.children[id.index()].take() else {
            return Ok(Duration::ZERO);
        };
        let pid = i32::try_from(child.id()).context("a process id")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .with_context(|| format!("cannot send SIGTERM to server {id}"))?;
        while started.elapsed() < Duration::from_secs(10) {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("server {id} exited {status} after SIGTERM");
                }
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!("server {id} did not exit within 10 s of SIGTERM")
    }

    /// Starts server `id` (stopping it first with SIGKILL if it runs) from its data.
    pub fn restart(&mut self, id: ServerId) -> Result<()> {
        self.kill(id)?;
        self.spawn(id, false)
    }

    /// Fails if a server that should run has exited (a bad config, a port in use), with
    /// the end of its log.
    pub fn check_running(&mut self) -> Result<()> {
        for id in ServerId::ALL {
            let slot = &mut self.children[id.index()];
            let Some(child) = slot else { continue };
            if let Ok(Some(status)) = child.try_wait() {
                *slot = None;
                let log = self.log_path(id);
                let text = fs::read_to_string(&log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(5)..].join("\n");
                bail!(
                    "server {id} exited ({status}); the end of {}:\n{tail}",
                    log.display()
                );
            }
        }
        Ok(())
    }

    /// SIGTERM to every server, then waits (SIGKILL after 5 s).
    pub fn stop(&mut self) {
        crate::cli::stop_children(&mut self.children);
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop();
    }
}
