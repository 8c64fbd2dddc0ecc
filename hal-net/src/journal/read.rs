//! Reading journals back: the files of one or more journal directories (or single
//! files), grouped by the server that wrote them, in the order written. Every error
//! names the file and the line.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hal_core::record::{Entry, Meta, Record};

use super::writer::journal_files;

/// The longest line read (a record is a few hundred bytes).
pub const LINE_BYTES_MAX: usize = 1 << 20;
/// The most entries read in all: a journal's default bound is 1 GiB, a few million
/// records per server.
pub const ENTRIES_MAX: usize = 50_000_000;

/// A journal that cannot be read: where, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {what}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ReadError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub what: String,
}

/// An entry and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub entry: Entry,
    /// The file, one allocation shared by all its entries (a journal of a million
    /// records holds a few paths, not a million).
    pub file: Arc<Path>,
    pub line: usize,
}

/// One server's journal.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerJournal {
    /// The server that wrote it, 1 to 3.
    pub server: u8,
    /// The meta record of its first file.
    pub meta: Meta,
    /// Its records in the order written (meta records of later files left out).
    pub entries: Vec<Located>,
    /// What was skipped, and why (a torn last line after a crash).
    pub notes: Vec<String>,
}

/// Reads the journals at `paths` (journal directories, data directories holding one as
/// `journal/`, or single files), grouped by server, lowest server first; each server's records in the order of the files (a
/// directory's by number) and of their lines. (Not by time: a server's wall clock may
/// have been stepped back.)
pub fn read(paths: &[PathBuf]) -> Result<Vec<ServerJournal>, ReadError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let listed = |dir: &Path| {
                journal_files(dir).map_err(|e| ReadError {
                    path: dir.to_path_buf(),
                    line: None,
                    what: e.to_string(),
                })
            };
            let mut found = listed(path)?;
            // A server's data directory stands for the journal in it.
            let inner = path.join("journal");
            if found.is_empty() && inner.is_dir() {
                found = listed(&inner)?;
            }
            if found.is_empty() {
                return Err(ReadError {
                    path: path.clone(),
                    line: None,
                    what:
                        "no journal files (journal-<n>.jsonl) in this directory or in its journal/"
                            .into(),
                });
            }
            files.extend(found.into_iter().map(|(file, _)| file));
        } else {
            files.push(path.clone());
        }
    }
    let mut servers: BTreeMap<u8, ServerJournal> = BTreeMap::new();
    let mut total = 0usize;
    for file in files {
        let (meta, entries, notes) = read_file(&file)?;
        let Some(server) = meta.server.filter(|s| (1..=3).contains(s)) else {
            return Err(ReadError {
                path: file,
                line: Some(1),
                what: "the meta record names no server 1 to 3: not a server's journal (a simulator history?)".into(),
            });
        };
        total = total.saturating_add(entries.len());
        if total > ENTRIES_MAX {
            return Err(ReadError {
                path: file,
                line: None,
                what: format!("more than {ENTRIES_MAX} records in all; read a shorter window"),
            });
        }
        let journal = servers.entry(server).or_insert_with(|| ServerJournal {
            server,
            meta: meta.clone(),
            entries: Vec::new(),
            notes: Vec::new(),
        });
        journal.entries.extend(entries);
        journal.notes.extend(notes);
    }
    Ok(servers.into_values().collect())
}

type FileContents = (Meta, Vec<Located>, Vec<String>);

fn read_file(path: &Path) -> Result<FileContents, ReadError> {
    let err = |line: Option<usize>, what: String| ReadError {
        path: path.to_path_buf(),
        line,
        what,
    };
    let file = File::open(path).map_err(|e| err(None, e.to_string()))?;
    let mut reader = BufReader::new(file);
    let shared_path: Arc<Path> = Arc::from(path);
    let mut meta = None;
    let mut entries = Vec::new();
    let mut notes = Vec::new();
    let mut number = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let read = (&mut reader)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| err(Some(number + 1), e.to_string()))?;
        if read == 0 {
            break;
        }
        number += 1;
        let complete = buf.last() == Some(&b'\n');
        if buf.len() > LINE_BYTES_MAX {
            return Err(err(
                Some(number),
                format!("a line longer than {LINE_BYTES_MAX} bytes"),
            ));
        }
        let text = String::from_utf8_lossy(&buf);
        if text.trim().is_empty() {
            continue;
        }
        let entry: Entry = match serde_json::from_str(text.trim_end()) {
            Ok(entry) => entry,
            // The process died while writing its last line.
            Err(_) if !complete => {
                notes.push(format!(
                    "{}:{number}: a torn last line (the server stopped while writing it) was ignored",
                    path.display()
                ));
                break;
            }
            Err(e) => return Err(err(Some(number), format!("not a journal record: {e}"))),
        };
        match (&entry.record, &meta) {
            (Record::Meta(m), None) => meta = Some(m.clone()),
            (Record::Meta(_), Some(_)) => {}
            (_, None) => {
                return Err(err(
                    Some(number),
                    "the file does not start with a meta record: not a journal file".into(),
                ));
            }
            (_, Some(_)) => entries.push(Located {
                entry,
                file: Arc::clone(&shared_path),
                line: number,
            }),
        }
    }
    let meta = meta.ok_or_else(|| err(None, "an empty file: not a journal".into()))?;
    Ok((meta, entries, notes))
}

#[cfg(test)]
mod tests {
    use hal_core::record::Stop;

    use super::*;

    /// A journal file of server 1: its meta line, then `records` stop records.
    fn write_file(path: &Path, records: u64) {
        let meta = Record::Meta(Meta {
            server: Some(1),
            ..Meta::default()
        });
        let stops = (0..records).map(|t_ms| {
            Record::Stop(Stop {
                t_ms,
                server: 1,
                reason: "shutdown".into(),
            })
        });
        let lines: Vec<String> = std::iter::once(meta)
            .chain(stops)
            .map(|r| serde_json::to_string(&Entry::from(r)).unwrap() + "\n")
            .collect();
        std::fs::write(path, lines.concat()).unwrap();
    }

    #[test]
    fn the_entries_of_one_file_share_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let files =
            ["journal-00000001.jsonl", "journal-00000002.jsonl"].map(|f| dir.path().join(f));
        for file in &files {
            write_file(file, 3);
        }
        let journals = read(&[dir.path().to_path_buf()]).unwrap();
        let entries = &journals[0].entries;
        assert_eq!(entries.len(), 6);
        assert!(Arc::ptr_eq(&entries[0].file, &entries[2].file));
        assert!(!Arc::ptr_eq(&entries[2].file, &entries[3].file));
        assert_eq!(*entries[3].file, *files[1]);
        assert_eq!(entries[3].line, 2, "the meta record is line 1");
    }

    #[test]
    fn a_data_directory_stands_for_its_journal_and_an_empty_one_is_refused() {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join("journal")).unwrap();
        write_file(&data.path().join("journal/journal-00000001.jsonl"), 2);
        let journals = read(&[data.path().to_path_buf()]).unwrap();
        assert_eq!(journals[0].entries.len(), 2);
        let empty = tempfile::tempdir().unwrap();
        let e = read(&[empty.path().to_path_buf()]).unwrap_err();
        assert!(
            e.to_string().contains(
                "no journal files (journal-<n>.jsonl) in this directory or in its journal/"
            ),
            "{e}"
        );
    }
}
