//! The floor: what this machine gives a triad with no license logic at all, to hold HAL's
//! figures against. Three bare processes carry the triad's traffic and keep its commit
//! rule: a client sends a request and waits for the answer; the first server appends a
//! record per request to its log and sends each batch to the other two, which append it
//! to theirs, sync and acknowledge; a request is answered once its record is synced on
//! two of the three. As in hal-net, batches go to the followers as soon as requests
//! arrive (whatever is still in flight), a follower syncs on its own thread, the first
//! server on another thread one sync at a time, and every log is written ahead with
//! zeros so that a sync writes data alone.
//!
//! It is not a license server (no seats, no leases, no roles, no elections, no
//! reconnection): a lost connection ends a floor server. What `hal-load floor` reports
//! next to `hal-load load` is how far HAL is from what the machine allows, and whether a
//! target is within reach of any code that keeps the rule.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::timeout;

use crate::load::Seats;

/// Bytes of a request and of its answer: hal-net's frames of a checkout request are 33
/// bytes, of a checkin 17, of their replies 18 to 23.
pub const REQUEST_BYTES: usize = 32;
/// Bytes of a request's log record: hal-net's entry for a checkout is about 40.
pub const RECORD_BYTES: usize = 48;
/// The first byte of every record: what tells records from the zeros written ahead.
const RECORD_MARK: u8 = 0xAB;
/// Zeros written ahead of the records at a time (hal-net writes 1 MiB too).
const LOG_AHEAD_BYTES: u64 = 1 << 20;
/// The most bytes a batch to a follower may hold.
const BATCH_BYTES_MAX: usize = 16 << 20;
/// How long a floor server and its clients wait for each other to start listening.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// How long a client waits for an answer before it reports an error.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A log of records written ahead with zeros, each append synced.
#[derive(Debug)]
struct Log {
    file: File,
    /// Bytes of records.
    len: u64,
    /// Bytes the file holds (records, then zeros).
    allocated: u64,
}

impl Log {
    fn create(path: &Path) -> Result<Log> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Log {
            file,
            len: 0,
            allocated: 0,
        })
    }

    /// Writes `records` after the last ones, with zeros ahead if they run past the
    /// file's end, and syncs them.
    fn append(&mut self, records: &[u8]) -> std::io::Result<()> {
        let end = self.len + records.len() as u64;
        if end <= self.allocated {
            self.file.write_all_at(records, self.len)?;
        } else {
            // The records, then zeros up to the next step past them.
            let allocated = end.div_ceil(LOG_AHEAD_BYTES) * LOG_AHEAD_BYTES;
            let mut ahead = records.to_vec();
            ahead.resize(
                usize::try_from(allocated - self.len).unwrap_or(usize::MAX),
                0,
            );
            self.file.write_all_at(&ahead, self.len)?;
            self.allocated = allocated;
        }
        self.file.sync_data()?;
        self.len = end;
        Ok(())
    }
}

/// The records a floor log holds: whole records from its start up to the zeros.
pub fn records_in(path: &Path) -> Result<u64> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut record = [0u8; RECORD_BYTES];
    let mut count = 0;
    loop {
        match file.read_exact(&mut record) {
            Ok(()) if record[0] == RECORD_MARK => count += 1,
            Ok(()) => return Ok(count),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(count),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// Connects to `addr`, trying again until it listens or `CONNECT_WITHIN` has passed.
async fn connect(addr: &str) -> Result<TcpStream> {
    let deadline = tokio::time::Instant::now() + CONNECT_WITHIN;
    loop {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(e).with_context(|| format!("cannot connect to {addr}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn listen(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// A follower: takes the first server's batches, appends and syncs each (on this
/// thread: its acknowledgement waits for the sync anyway), and acknowledges it with one
/// byte. Serves one connection at a time, until the process is stopped.
pub async fn follow(listen_at: &str, log: &Path) -> Result<()> {
    let listener = listen(listen_at).await?;
    let mut log = Log::create(log)?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        follow_one(stream, &mut log).await?;
    }
}

async fn follow_one(mut stream: TcpStream, log: &mut Log) -> Result<()> {
    let mut received: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(());
        }
        received.extend_from_slice(&chunk[..read]);
        // Every whole batch received so far goes into one append and one sync.
        let mut records = Vec::new();
        let mut used = 0;
        let mut batches = 0;
        while let Some((len, rest)) = batch_at(&received[used..])? {
            records.extend_from_slice(&rest[..len]);
            used += 4 + len;
            batches += 1;
        }
        if batches == 0 {
            continue;
        }
        received.drain(..used);
        log.append(&records)?;
        stream.write_all(&vec![1u8; batches]).await?;
    }
}

/// The length of the whole batch at the start of `bytes` and the bytes after its length,
/// or `None` if it has not all arrived.
fn batch_at(bytes: &[u8]) -> Result<Option<(usize, &[u8])>> {
    let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*len) as usize;
    if len > BATCH_BYTES_MAX || !len.is_multiple_of(RECORD_BYTES) {
        bail!(
            "a batch of {len} bytes: not whole records of {RECORD_BYTES} under {BATCH_BYTES_MAX}"
        );
    }
    Ok((rest.len() >= len).then_some((len, rest)))
}

/// What the first server's tasks share: requests waiting for a batch, the clients'
/// connections to answer on, and how far each copy of the log is synced.
#[derive(Debug, Default)]
struct Board {
    inbox: Mutex<Inbox>,
    wake: Notify,
    /// Batches acknowledged by each follower, and synced here.
    acked: [AtomicU64; 2],
    synced_here: AtomicU64,
    /// Why the first server stops: a sync here failed, or a follower's link broke.
    failed: Mutex<Option<String>>,
}

#[derive(Debug, Default)]
struct Inbox {
    /// Requests not yet in a batch: connection and request.
    waiting: Vec<(usize, [u8; REQUEST_BYTES])>,
    /// Where to answer each connection (`None` once it closed). A slot per connection
    /// ever made: a run of `hal-load floor` makes one per client and loop.
    answer_to: Vec<Option<OwnedWriteHalf>>,
}

impl Board {
    fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fail(&self, why: String) {
        let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
        failed.get_or_insert(why);
        self.wake.notify_one();
    }

    fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The newest batch synced on two of the three.
    fn committed(&self) -> u64 {
        let a = self.acked[0].load(Ordering::SeqCst);
        let b = self.acked[1].load(Ordering::SeqCst);
        let here = self.synced_here.load(Ordering::SeqCst);
        a.min(b).max(a.min(here)).max(b.min(here))
    }
}

/// The first server: takes clients' requests at `listen_at`, and answers each once it is
/// synced on two of itself and the `followers`.
pub async fn lead(listen_at: &str, followers: &[String; 2], log: &Path) -> Result<()> {
    let board = Arc::new(Board::default());
    let mut to_followers = Vec::new();
    for (n, addr) in followers.iter().enumerate() {
        let (from, to) = connect(addr).await?.into_split();
        to_followers.push(to);
        tokio::spawn(count_acks(from, n, board.clone()));
    }
    let listener = listen(listen_at).await?;
    tokio::spawn(accept_clients(listener, board.clone()));
    let log = Arc::new(Mutex::new(Log::create(log)?));
    commit_loop(&board, &mut to_followers, &log).await
}

async fn count_acks(mut from: OwnedReadHalf, n: usize, board: Arc<Board>) {
    let mut acks = [0u8; 4096];
    loop {
        match from.read(&mut acks).await {
            Ok(0) => return board.fail(format!("follower {} closed its link", n + 2)),
            Err(e) => return board.fail(format!("follower {}'s link broke: {e}", n + 2)),
            Ok(read) => {
                board.acked[n].fetch_add(read as u64, Ordering::SeqCst);
                board.wake.notify_one();
            }
        }
    }
}

async fn accept_clients(listener: TcpListener, board: Arc<Board>) {
    while let Ok((stream, _)) = listener.accept().await {
        if stream.set_nodelay(true).is_err() {
            continue;
        }
        let (mut from, to) = stream.into_split();
        let conn = {
            let mut inbox = board.inbox();
            inbox.answer_to.push(Some(to));
            inbox.answer_to.len() - 1
        };
        let board = board.clone();
        tokio::spawn(async move {
            read_requests(&mut from, conn, &board).await;
            board.inbox().answer_to[conn] = None;
        });
    }
}

/// Puts each request of `conn` in the inbox, until the client closes.
async fn read_requests(from: &mut OwnedReadHalf, conn: usize, board: &Board) {
    // Reads into a buffer larger than a request: a read that does not fill it tells
    // tokio the socket is drained, which saves a read that would only find it empty.
    let mut received = Vec::with_capacity(4 * REQUEST_BYTES);
    let mut chunk = [0u8; 4 * REQUEST_BYTES];
    loop {
        match from.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => received.extend_from_slice(&chunk[..read]),
        }
        let whole = received.len() / REQUEST_BYTES * REQUEST_BYTES;
        if whole == 0 {
            continue;
        }
        {
            let mut inbox = board.inbox();
            for request in received[..whole].chunks_exact(REQUEST_BYTES) {
                let mut copy = [0u8; REQUEST_BYTES];
                copy.copy_from_slice(request);
                inbox.waiting.push((conn, copy));
            }
        }
        received.drain(..whole);
        board.wake.notify_one();
    }
}

/// Batches waiting requests to the followers and to the sync here, and answers the
/// batches synced on two of three, until a follower or the disk fails.
async fn commit_loop(
    board: &Arc<Board>,
    to_followers: &mut [OwnedWriteHalf],
    log: &Arc<Mutex<Log>>,
) -> Result<()> {
    let mut batches = 0u64;
    let mut in_flight: VecDeque<(u64, Vec<usize>)> = VecDeque::new();
    // Records not yet handed to a sync here (the newest of them are batch `batches`'s).
    let mut unsynced: Vec<u8> = Vec::new();
    // The newest batch of the sync running here, if one is.
    let mut syncing: Option<u64> = None;
    loop {
        if let Some(why) = board.failure() {
            bail!("{why}");
        }
        let waiting = std::mem::take(&mut board.inbox().waiting);
        if !waiting.is_empty() {
            batches += 1;
            let mut batch = Vec::with_capacity(4 + waiting.len() * RECORD_BYTES);
            let records_len = u32::try_from(waiting.len() * RECORD_BYTES)?;
            batch.extend_from_slice(&records_len.to_le_bytes());
            for (_, request) in &waiting {
                let mut record = [0u8; RECORD_BYTES];
                record[0] = RECORD_MARK;
                record[1..=REQUEST_BYTES].copy_from_slice(request);
                batch.extend_from_slice(&record);
            }
            for to in to_followers.iter_mut() {
                to.write_all(&batch).await?;
            }
            unsynced.extend_from_slice(&batch[4..]);
            in_flight.push_back((batches, waiting.into_iter().map(|(c, _)| c).collect()));
        }
        let synced_here = board.synced_here.load(Ordering::SeqCst);
        if syncing.is_some_and(|upto| synced_here >= upto) {
            syncing = None;
        }
        if syncing.is_none() && !unsynced.is_empty() {
            syncing = Some(batches);
            sync_here(board, log, std::mem::take(&mut unsynced), batches);
        }
        answer(board, &mut in_flight);
        if board.inbox().waiting.is_empty() {
            board.wake.notified().await;
        }
    }
}

/// Appends and syncs `records` (batches up to `upto`) on another thread, as hal-net's
/// active server does, so that the loop goes on batching and answering meanwhile.
fn sync_here(board: &Arc<Board>, log: &Arc<Mutex<Log>>, records: Vec<u8>, upto: u64) {
    let (board, log) = (board.clone(), log.clone());
    tokio::task::spawn_blocking(move || {
        let appended = log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(&records);
        match appended {
            Ok(()) => {
                board.synced_here.store(upto, Ordering::SeqCst);
                board.wake.notify_one();
            }
            Err(e) => board.fail(format!("cannot sync the log: {e}")),
        }
    });
}

/// Answers, in order, every batch in flight that is synced on two of three.
fn answer(board: &Board, in_flight: &mut VecDeque<(u64, Vec<usize>)>) {
    let committed = board.committed();
    let mut inbox = board.inbox();
    while in_flight
        .front()
        .is_some_and(|(batch, _)| *batch <= committed)
    {
        let Some((_, conns)) = in_flight.pop_front() else {
            break;
        };
        for conn in conns {
            // One request in flight per client: its answer always fits in the socket's
            // buffer. A client that does not read is dropped.
            let slot = &mut inbox.answer_to[conn];
            let sent = slot.as_ref().map(|to| to.try_write(&[0u8; REQUEST_BYTES]));
            if !matches!(sent, Some(Ok(REQUEST_BYTES))) {
                *slot = None;
            }
        }
    }
}

/// One client of the floor: a request and its answer for a checkout, the same again for
/// a checkin.
#[derive(Debug)]
pub struct FloorSeats {
    stream: TcpStream,
    sent: u64,
}

impl FloorSeats {
    pub async fn connect(addr: &str) -> Result<FloorSeats> {
        Ok(FloorSeats {
            stream: connect(addr).await?,
            sent: 0,
        })
    }

    async fn round_trip(&mut self) -> Result<(), String> {
        self.sent += 1;
        let mut request = [0u8; REQUEST_BYTES];
        request[..8].copy_from_slice(&self.sent.to_le_bytes());
        let exchange = async {
            self.stream.write_all(&request).await?;
            // As on the server: a buffer larger than the answer saves an empty read.
            let mut answer = [0u8; 4 * REQUEST_BYTES];
            let mut received = 0;
            while received < REQUEST_BYTES {
                match self.stream.read(&mut answer[received..]).await? {
                    0 => return Err(ErrorKind::UnexpectedEof.into()),
                    read => received += read,
                }
            }
            Ok::<_, std::io::Error>(())
        };
        match timeout(ANSWER_WITHIN, exchange).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("floor: {e}")),
            Err(_) => Err(format!(
                "floor: no answer within {} s",
                ANSWER_WITHIN.as_secs()
            )),
        }
    }
}

impl Seats for FloorSeats {
    type Held = ();

    async fn checkout(&mut self) -> Result<(), String> {
        self.round_trip().await
    }

    async fn checkin(&mut self, (): ()) -> Result<(), String> {
        self.round_trip().await
    }
}

/// The three floor servers, processes of `hal-load floor-server` (stopped when dropped).
#[derive(Debug)]
pub struct FloorTriad {
    dir: PathBuf,
    base_port: u16,
    children: Vec<Option<Child>>,
}

impl FloorTriad {
    /// Starts the servers with `exe` (hal-load itself), their logs in `dir` (made if
    /// absent, emptied first), listening on `base_port` and the two after it.
    pub fn start(exe: &Path, dir: &Path, base_port: u16) -> Result<FloorTriad> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot make {}", dir.display()))?;
        let mut triad = FloorTriad {
            dir: dir.to_path_buf(),
            base_port,
            children: vec![None, None, None],
        };
        // The followers first: the first server connects to them as it starts.
        for n in [2, 3, 1] {
            let mut command = Command::new(exe);
            command.args(["floor-server", "--listen", &triad.addr(n), "--log"]);
            command.arg(triad.log(n));
            if n == 1 {
                command.args([
                    "--followers",
                    &format!("{},{}", triad.addr(2), triad.addr(3)),
                ]);
            }
            let stderr = File::create(triad.said(n))?;
            let child = command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .with_context(|| format!("cannot start {}", exe.display()))?;
            triad.children[usize::from(n - 1)] = Some(child);
        }
        Ok(triad)
    }

    /// Server `n`'s address (1 to 3).
    pub fn addr(&self, n: u16) -> String {
        format!("127.0.0.1:{}", self.base_port + n - 1)
    }

    /// Server `n`'s log.
    pub fn log(&self, n: u16) -> PathBuf {
        self.dir.join(format!("floor-{n}.log"))
    }

    /// What server `n` printed (its errors).
    fn said(&self, n: u16) -> PathBuf {
        self.dir.join(format!("floor-{n}.err"))
    }

    /// Process ids of servers 1 to 3 (`None` for one not running).
    pub fn pids(&self) -> Vec<Option<u32>> {
        self.children
            .iter()
            .map(|c| c.as_ref().map(Child::id))
            .collect()
    }

    /// Fails if a server has exited, with what it said.
    pub fn check_running(&mut self) -> Result<()> {
        for (n, slot) in (1u16..).zip(&mut self.children) {
            if let Some(child) = slot
                && let Some(status) = child.try_wait()?
            {
                let said = std::fs::read_to_string(self.said(n)).unwrap_or_default();
                bail!("floor server {n} exited ({status}): {}", said.trim());
            }
        }
        Ok(())
    }

    /// Waits until the first server takes clients (it listens once it has reached both
    /// followers), failing at once if a server exits.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let deadline = tokio::time::Instant::now() + CONNECT_WITHIN;
        loop {
            self.check_running()?;
            if TcpStream::connect(self.addr(1)).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the floor servers did not start within {CONNECT_WITHIN:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the servers and counts the records in each log.
    pub fn stop(&mut self) -> Result<[u64; 3]> {
        crate::cli::stop_children(&mut self.children);
        Ok([
            records_in(&self.log(1))?,
            records_in(&self.log(2))?,
            records_in(&self.log(3))?,
        ])
    }
}

impl Drop for FloorTriad {
    fn drop(&mut self) {
        crate::cli::stop_children(&mut self.children);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_log_counts_its_records_across_the_zeros_written_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("floor.log");
        let mut log = Log::create(&path).unwrap();
        let mut record = [7u8; RECORD_BYTES];
        record[0] = RECORD_MARK;
        log.append(&record.repeat(3)).unwrap();
        assert_eq!(log.allocated, LOG_AHEAD_BYTES);
        assert_eq!(records_in(&path).unwrap(), 3);
        // Past the zeros written ahead: the file grows by another step, records stay whole.
        let many = (LOG_AHEAD_BYTES as usize / RECORD_BYTES) - 1;
        log.append(&record.repeat(many)).unwrap();
        assert_eq!(log.allocated, 2 * LOG_AHEAD_BYTES);
        assert_eq!(records_in(&path).unwrap(), 3 + many as u64);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * LOG_AHEAD_BYTES);
    }

    #[test]
    fn a_batch_is_taken_whole_or_not_at_all_and_a_wrong_length_is_refused() {
        let mut bytes = u32::try_from(2 * RECORD_BYTES)
            .unwrap()
            .to_le_bytes()
            .to_vec();
        bytes.extend_from_slice(&[RECORD_MARK; RECORD_BYTES]);
        assert!(batch_at(&bytes[..2]).unwrap().is_none());
        assert!(batch_at(&bytes).unwrap().is_none());
        bytes.extend_from_slice(&[RECORD_MARK; RECORD_BYTES + 5]);
        let (len, rest) = batch_at(&bytes).unwrap().unwrap();
        assert_eq!((len, rest.len()), (2 * RECORD_BYTES, 2 * RECORD_BYTES + 5));

        let odd = 5u32.to_le_bytes();
        let error = batch_at(&odd).unwrap_err().to_string();
        assert!(error.contains("a batch of 5 bytes"), "{error}");
    }
}
