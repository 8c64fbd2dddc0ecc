//! Borrowed seats: what the borrowing machine keeps ([`BorrowRecord`]), where it keeps
//! them ([`BorrowStore`]), and the one-request sessions that borrow and return.
//!
//! A borrow is made by a client id of its own, used for nothing else, so that the process
//! that returns it (perhaps days later, perhaps another one) can go on numbering that
//! client's requests from where the borrow left off without ever reusing a number the
//! servers remember.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hal_core::ServerId;
use hal_core::client::ClientEvent;
use hal_core::protocol::{ClientId, Denial, Handle, RequestSeq};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::session::Answered;
use crate::tls::borrow_proof::{BorrowProof, VerifyError};

use super::engine::{denial_error, no_answer_error};
use super::options::{ClientSession, random_client_id};
use super::{Error, Event, Options, RequestId};

/// What the borrowing machine keeps of a borrow: enough to use it offline until it ends,
/// and to return it early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BorrowRecord {
    /// The seat's handle (`h17`).
    pub handle: String,
    /// The feature borrowed.
    pub feature: String,
    /// The client id the borrow was made with.
    pub client: u64,
    /// The next request number of that client id.
    pub next_seq: u64,
    /// When the borrow ends: ms since the Unix epoch on the granting server's clock.
    pub end_ms: u64,
    /// The license path the borrow was made from.
    pub license_path: String,
    /// The server that answered the borrow (1, 2 or 3); 0 in records written before it
    /// was kept.
    #[serde(default)]
    pub server: u8,
    /// That server's signature over this record, which proves it offline
    /// ([`BorrowRecord::verify`]); `None` for a borrow from a plaintext triad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<BorrowProof>,
}

/// A borrow whose record proved itself against the triad's CA: the seat is this
/// machine's until [`Borrowed::end`], with or without a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Borrowed {
    /// The seat's handle.
    pub handle: Handle,
    /// The feature borrowed.
    pub feature: String,
    /// When the borrow ends (on the granting server's clock).
    pub end: SystemTime,
    /// The user it was granted to.
    pub user: String,
    /// The host it was granted to.
    pub host: String,
    /// The server that signed the record.
    pub signer: ServerId,
}

impl Borrowed {
    /// Whether the borrow has not ended at `now`.
    pub fn is_current(&self, now: SystemTime) -> bool {
        now < self.end
    }
}

impl BorrowRecord {
    /// The seat's handle.
    pub fn handle(&self) -> Result<Handle, Error> {
        parse_handle(&self.handle).map_err(Error::Record)
    }

    /// When the borrow ends.
    pub fn end(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + Duration::from_millis(self.end_ms)
    }

    /// Whether the borrow has not ended at `now`.
    pub fn is_current(&self, now: std::time::SystemTime) -> bool {
        now < self.end()
    }

    /// Proves the record with the triad's CA certificate `ca`, offline: a server the CA
    /// certified signed it, and nothing in it (handle, feature, client id, end, user,
    /// host, servers) changed since. Says what is wrong otherwise ([`Error::Record`]): an
    /// unsigned record, an edited one, one signed by a certificate not from this CA; an
    /// unusable CA file is [`Error::Config`].
    pub fn verify(&self, ca: &Path) -> Result<Borrowed, Error> {
        let handle = self.handle()?;
        let Some(proof) = &self.proof else {
            return Err(Error::Record(format!(
                "{handle} ({}) is unsigned: it was borrowed from a triad without TLS, so nothing proves it",
                self.feature
            )));
        };
        if proof.signer != self.server {
            return Err(Error::Record(format!(
                "{handle} ({}) says server #{} answered it, but server #{} signed it: it was changed after it was signed",
                self.feature, self.server, proof.signer
            )));
        }
        let claim = proof.claim(handle.0, &self.feature, self.client, self.end_ms);
        proof.verify(&claim, ca).map_err(|e| match e {
            VerifyError::Ca(e) => Error::Config(format!("triad CA: {e}")),
            e => Error::Record(format!("{handle} ({}): {e}", self.feature)),
        })?;
        let signer = ServerId::new(proof.signer)
            .ok_or_else(|| Error::Record(format!("{handle}: no server #{}", proof.signer)))?;
        Ok(Borrowed {
            handle,
            feature: self.feature.clone(),
            end: self.end(),
            user: proof.user.clone(),
            host: proof.host.clone(),
            signer,
        })
    }
}

/// Parses a handle as printed (`h17`).
pub fn parse_handle(text: &str) -> Result<Handle, String> {
    text.strip_prefix('h')
        .and_then(|n| n.parse().ok())
        .map(Handle)
        .ok_or_else(|| format!("'{text}' is not a handle (handles look like h17)"))
}

/// How a return ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    /// The seat was given back before its end.
    Returned,
    /// The servers no longer had it: the borrow had ended, or was returned already.
    AlreadyEnded,
}

/// The borrow records of this machine: a JSON file, `borrows.json` in `$HAL_HOME`
/// (default `~/.hal`). Changes are made under a lock and saved atomically, so two
/// processes borrowing at once both keep their records.
#[derive(Debug, Clone)]
pub struct BorrowStore {
    path: PathBuf,
}

/// The most records a store holds (a machine borrows a few seats, not thousands).
pub const BORROW_RECORDS_MAX: usize = 4096;
/// The largest store file read: a signed record takes about 2 KiB, so this holds
/// [`BORROW_RECORDS_MAX`] of them several times over.
const BORROW_FILE_BYTES_MAX: u64 = 32 << 20;

impl BorrowStore {
    /// The store of this user on this machine.
    pub fn default_location() -> Result<BorrowStore, Error> {
        let dir = match std::env::var_os("HAL_HOME") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home = std::env::var_os("HOME")
                    .ok_or_else(|| Error::Record("neither HAL_HOME nor HOME is set".to_string()))?;
                PathBuf::from(home).join(".hal")
            }
        };
        Ok(BorrowStore::at(dir.join("borrows.json")))
    }

    /// The store in the file `path`.
    pub fn at(path: impl Into<PathBuf>) -> BorrowStore {
        BorrowStore { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every record kept (an absent file is an empty store).
    pub fn list(&self) -> Result<Vec<BorrowRecord>, Error> {
        use std::io::Read;
        let read = std::fs::File::open(&self.path).and_then(|file| {
            let mut bytes = Vec::new();
            file.take(BORROW_FILE_BYTES_MAX + 1)
                .read_to_end(&mut bytes)?;
            Ok(bytes)
        });
        if let Ok(bytes) = &read
            && bytes.len() as u64 > BORROW_FILE_BYTES_MAX
        {
            return Err(Error::Record(format!(
                "{}: larger than {} MiB, far more than {BORROW_RECORDS_MAX} records take",
                self.path.display(),
                BORROW_FILE_BYTES_MAX >> 20
            )));
        }
        match read {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Record(format!(
                    "{}: not a borrow record file ({e})",
                    self.path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::Record(format!(
                "cannot read {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// The record of `handle`, if kept.
    pub fn find(&self, handle: Handle) -> Result<Option<BorrowRecord>, Error> {
        let text = handle.to_string();
        Ok(self.list()?.into_iter().find(|r| r.handle == text))
    }

    /// Keeps `record`.
    pub fn add(&self, record: BorrowRecord) -> Result<(), Error> {
        self.change(|records| {
            if records.len() >= BORROW_RECORDS_MAX {
                return Err(Error::Record(format!(
                    "the store holds {BORROW_RECORDS_MAX} records already"
                )));
            }
            records.push(record);
            Ok(())
        })
    }

    /// The current borrow of `feature` on host `host`, proved by its record against the
    /// triad's CA `ca` ([`BorrowRecord::verify`]), ending last if there are several;
    /// `None` if no record of the feature is current. A record of the feature that does
    /// not prove itself (edited, unsigned, another triad's, another host's) is an error
    /// that says why, unless another record proves a current borrow.
    pub fn borrowed(
        &self,
        feature: &str,
        ca: &Path,
        host: &str,
        now: SystemTime,
    ) -> Result<Option<Borrowed>, Error> {
        let mut best: Option<Borrowed> = None;
        let mut refused = Vec::new();
        for record in self.list()?.iter().filter(|r| r.feature == feature) {
            match record.verify(ca) {
                Ok(borrowed) if borrowed.host != host => refused.push(format!(
                    "{} was borrowed on host {}, and this is {host}",
                    borrowed.handle, borrowed.host
                )),
                Ok(borrowed) if !borrowed.is_current(now) => {}
                Ok(borrowed) => {
                    if best.as_ref().is_none_or(|b| b.end < borrowed.end) {
                        best = Some(borrowed);
                    }
                }
                Err(Error::Record(why)) => refused.push(why),
                Err(other) => return Err(other),
            }
        }
        match best {
            Some(borrowed) => Ok(Some(borrowed)),
            None if refused.is_empty() => Ok(None),
            None => Err(Error::Record(format!(
                "{}: {}",
                self.path.display(),
                refused.join("; ")
            ))),
        }
    }

    /// Drops the record of `handle`; says whether there was one.
    pub fn remove(&self, handle: Handle) -> Result<bool, Error> {
        let text = handle.to_string();
        self.change(|records| {
            let before = records.len();
            records.retain(|r| r.handle != text);
            Ok(records.len() < before)
        })
    }

    /// Reads, changes and saves the records under the store's lock.
    fn change<R>(
        &self,
        change: impl FnOnce(&mut Vec<BorrowRecord>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Record(format!("cannot create {}: {e}", dir.display())))?;
        let lock_path = self.path.with_extension("lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::Record(format!("cannot open {}: {e}", lock_path.display())))?;
        let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| Error::Record(format!("cannot lock {}: {e}", lock_path.display())))?;
        let mut records = self.list()?;
        let result = change(&mut records)?;
        let bytes = serde_json::to_vec_pretty(&records)
            .map_err(|e| Error::Record(format!("cannot encode the records: {e}")))?;
        crate::license_file::save(&self.path, &bytes)
            .map_err(|e| Error::Record(format!("cannot write {}: {e}", self.path.display())))?;
        Ok(result)
    }
}

/// [`BorrowStore::borrowed`] in this user's store, with the CA and host of `options`.
pub(super) fn borrowed_here(options: &Options, feature: &str) -> Result<Option<Borrowed>, Error> {
    let ca = options.ca_file().ok_or_else(|| {
        Error::Config(
            "a borrow record is proved with the triad's CA certificate, and these options name none (Options::ca)".to_string(),
        )
    })?;
    BorrowStore::default_location()?.borrowed(feature, ca, options.host_name(), SystemTime::now())
}

/// The answer to a one-request session.
enum Answer {
    Granted {
        handle: Handle,
        server: u8,
        borrow_end_ms: Option<u64>,
    },
    Released,
}

type OneShot = ClientSession;

/// Waits for the answer to `seq`. When no server answers in time and one had been
/// reached, the session is handed to a task that settles the request (a seat it
/// produced is returned), reporting [`Event::Settled`] on `events`.
async fn answer(
    mut session: OneShot,
    seq: RequestSeq,
    options: &Options,
    events: &broadcast::Sender<Event>,
) -> Result<(Answer, OneShot), Error> {
    let answered = session
        .answer(seq, |event| {
            if let ClientEvent::FailedOver { from, to } = event {
                let _ = events.send(Event::FailedOver { from, to });
            }
        })
        .await;
    match answered {
        Answered::Granted {
            handle,
            server,
            borrow_end,
            ..
        } => {
            let answer = Answer::Granted {
                handle,
                server: server.get(),
                borrow_end_ms: borrow_end.map(|e| e.0),
            };
            Ok((answer, session))
        }
        Answered::Released { .. } => Ok((Answer::Released, session)),
        Answered::Denied { reason, .. } => Err(denial_error(&session, reason)),
        Answered::Unknown { last_denial, .. } => {
            let error = no_answer_error(&session, seq, last_denial);
            if matches!(error, Error::NoAnswer { .. }) {
                let limit = options.timing.session_idle_max();
                tokio::spawn(settle(session, seq, limit, events.clone()));
            }
            Err(error)
        }
    }
}

/// Lets a one-request session settle `seq` for as long as the servers remember it.
async fn settle(
    mut session: OneShot,
    seq: RequestSeq,
    limit: Duration,
    events: broadcast::Sender<Event>,
) {
    let settled = async {
        loop {
            if let ClientEvent::Resolved { seq: s, released } = session.next_event().await
                && s == seq
            {
                return released;
            }
        }
    };
    if let Ok(released) = tokio::time::timeout(limit, settled).await {
        let _ = events.send(Event::Settled {
            request: RequestId(seq.0),
            released,
        });
    }
}

/// Borrows a seat of `feature` for `hours` with a client id of its own.
pub(super) async fn borrow(
    options: &Options,
    feature: &str,
    hours: u32,
    events: &broadcast::Sender<Event>,
) -> Result<BorrowRecord, Error> {
    let id = random_client_id()?;
    let mut session = options.session(id)?;
    let seq = session.borrow(feature, hours);
    let (answer, mut session) = answer(session, seq, options, events).await?;
    let Answer::Granted {
        handle,
        server,
        borrow_end_ms: Some(end_ms),
    } = answer
    else {
        return Err(Error::Unreachable(
            "the server answered a borrow with something else".to_string(),
        ));
    };
    Ok(BorrowRecord {
        handle: handle.to_string(),
        feature: feature.to_string(),
        client: id.0,
        next_seq: session.client().next_seq().0,
        end_ms,
        license_path: options.license_path(),
        server,
        proof: session.take_borrow_proof(seq),
    })
}

/// Returns the borrow of `record` early.
pub(super) async fn return_borrow(
    options: &Options,
    record: &BorrowRecord,
    events: &broadcast::Sender<Event>,
) -> Result<Returned, Error> {
    let handle = record.handle()?;
    let mut session = options.session(ClientId(record.client))?;
    session.resume_from(RequestSeq(record.next_seq));
    let seq = session.return_borrow(handle);
    match answer(session, seq, options, events).await {
        Ok((Answer::Released, _)) => Ok(Returned::Returned),
        Ok((Answer::Granted { .. }, _)) => Err(Error::Unreachable(
            "the server answered a return with something else".to_string(),
        )),
        Err(Error::Denied(Denial::UnknownHandle)) => Ok(Returned::AlreadyEnded),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::ServerTls;
    use crate::tls::testing::Triad;
    use crate::tls::triad_dir::{server_cert_file, server_key_file};

    const HOUR_MS: u64 = 3_600_000;

    /// A record of `handle` ending at `end_ms`, signed by server #1 of `triad`.
    fn signed(triad: &Triad, handle: u64, end_ms: u64, host: &str) -> BorrowRecord {
        let one = ServerId::new(1).expect("slot 1");
        let tls = ServerTls::load(
            &triad.ca(),
            &triad.path(&server_cert_file(one)),
            &triad.path(&server_key_file(one)),
            one,
            SystemTime::now(),
        )
        .expect("loads");
        let now_ms = u64::try_from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_millis(),
        )
        .expect("fits");
        let grant = crate::tls::borrow_proof::Grant {
            handle,
            feature: "cad",
            client: 7,
            user: "ann",
            host,
            end_ms,
            granted_by: one.get(),
        };
        let proof = tls.borrow_signer().sign(&grant, now_ms).expect("signs");
        BorrowRecord {
            handle: format!("h{handle}"),
            feature: "cad".to_string(),
            client: 7,
            next_seq: 2,
            end_ms,
            license_path: "6201@127.0.0.1".to_string(),
            server: 1,
            proof: Some(proof),
        }
    }

    #[test]
    fn the_current_proved_borrow_ending_last_wins_over_refused_records() {
        let triad = Triad::new();
        let store = BorrowStore::at(triad.path("borrows.json"));
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(100 * HOUR_MS);
        let at = |hours: u64| 100 * HOUR_MS + hours * HOUR_MS;
        let mut edited = signed(&triad, 1, at(1), "ws1");
        edited.end_ms = at(50);
        store.add(edited).expect("kept");
        // An edited record alone: refused, saying why.
        let error = store
            .borrowed("cad", &triad.ca(), "ws1", now)
            .expect_err("edited");
        assert!(error.to_string().contains("h1 (cad)"), "{error}");
        assert!(error.to_string().contains("changed after"), "{error}");
        // An ended record and an edited one: still refused.
        store
            .add(signed(&triad, 2, at(0) - 1, "ws1"))
            .expect("kept");
        assert!(store.borrowed("cad", &triad.ca(), "ws1", now).is_err());
        // Two current ones: the later wins, the edited one does not spoil it.
        store.add(signed(&triad, 3, at(2), "ws1")).expect("kept");
        store.add(signed(&triad, 4, at(5), "ws1")).expect("kept");
        let best = store
            .borrowed("cad", &triad.ca(), "ws1", now)
            .expect("proved")
            .expect("current");
        assert_eq!(best.handle, Handle(4));
        assert_eq!(best.user, "ann");
        assert_eq!(best.signer, ServerId::new(1).expect("1"));
        // Other features, other hosts.
        assert_eq!(
            store
                .borrowed("cae", &triad.ca(), "ws1", now)
                .expect("none"),
            None
        );
        let error = store
            .borrowed("cad", &triad.ca(), "ws2", now)
            .expect_err("another host");
        assert!(
            error.to_string().contains("borrowed on host ws1"),
            "{error}"
        );
    }

    #[test]
    fn a_record_that_names_another_answering_server_than_its_signer_is_refused() {
        let triad = Triad::new();
        let mut record = signed(&triad, 1, 5 * HOUR_MS, "ws1");
        record.server = 2;
        let error = record.verify(&triad.ca()).expect_err("server changed");
        assert!(
            error
                .to_string()
                .contains("says server #2 answered it, but server #1 signed it"),
            "{error}"
        );
        record.server = 1;
        record.verify(&triad.ca()).expect("as signed");
    }

    #[test]
    fn a_store_file_past_its_limit_is_refused_unread() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("borrows.json");
        let file = std::fs::File::create(&path).expect("created");
        file.set_len(BORROW_FILE_BYTES_MAX + 1).expect("sized");
        let error = BorrowStore::at(&path).list().expect_err("too large");
        assert!(error.to_string().contains("larger than 32 MiB"), "{error}");
        file.set_len(2).expect("sized");
        std::fs::write(&path, "[]").expect("written");
        assert_eq!(BorrowStore::at(&path).list().expect("empty"), Vec::new());
    }
}
