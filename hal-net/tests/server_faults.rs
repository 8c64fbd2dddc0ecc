//! Real `hal-net serve` processes facing what goes wrong in the field: a damaged log (in
//! its middle, or its last record), a torn tail, junk on the port, and servers whose
//! triad list or license disagree.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use support::cluster::{Cluster, json, write_license};

const TIMING: &str = "";

/// Writes some log records by taking seats.
fn take_seats(cluster: &Cluster, n: usize) {
    for _ in 0..n {
        let out = cluster.verb(&["borrow", "cad", "--hours", "1", "--json"]);
        assert!(out.status.success(), "{out:?}\n{}", cluster.logs());
    }
}

#[test]
fn a_corrupt_record_stops_the_server_and_a_torn_tail_is_repaired() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    take_seats(&cluster, 3);
    cluster.stop(3);
    cluster.stop(2);

    // #3: one byte flipped inside the second record: the middle of the log.
    let log3 = cluster.data(3).join("log");
    let original = std::fs::read(&log3).unwrap();
    let starts = record_starts(&original);
    assert!(starts.len() > 4, "too few records: {starts:?}");
    let second = starts[1];
    let flip = second + (starts[2] - second) / 2;
    let mut bytes = original.clone();
    bytes[flip] ^= 0x55;
    std::fs::write(&log3, &bytes).unwrap();
    cluster.start(3);
    let status = cluster.wait_exit(3, Duration::from_secs(10));
    assert!(!status.success());
    let log = std::fs::read_to_string(cluster.log(3)).unwrap();
    let damaged = format!("{} is damaged at byte {second} (", log3.display());
    assert!(log.contains(&damaged), "{log}");
    assert!(log.contains("yet an intact record follows"), "{log}");

    // #3 again, its log as it was but for the last byte of its last record: a complete
    // record whose checksum fails is corruption at the end of the log too, not a torn
    // write. (The last byte, so that no sector of the record reads all zero, the one
    // shape a torn write leaves.)
    let (last, end) = (starts[starts.len() - 2], starts[starts.len() - 1]);
    let mut bytes = original.clone();
    bytes[end - 1] = if bytes[end - 1] == 0x5a { 0xa5 } else { 0x5a };
    std::fs::write(&log3, &bytes).unwrap();
    cluster.start(3);
    let status = cluster.wait_exit(3, Duration::from_secs(10));
    assert_eq!(status.code(), Some(1));
    let log = std::fs::read_to_string(cluster.log(3)).unwrap();
    let damaged = format!(
        "{} is damaged at byte {last} (a complete record whose checksum fails: disk corruption, not a torn write)",
        log3.display()
    );
    assert!(log.contains(&damaged), "{log}");
    assert!(log.contains("start this server with --join-empty"), "{log}");
    assert_eq!(std::fs::read(&log3).unwrap(), bytes, "left as found");

    // #2: a record begun where its records end (in the zeros written ahead of them), as
    // a crash mid-write leaves it: the sector with its header written, the sectors with
    // the rest of its 2000 bytes not.
    let log2 = cluster.data(2).join("log");
    let before = records_end(&std::fs::read(&log2).unwrap());
    let file = std::fs::OpenOptions::new().write(true).open(&log2).unwrap();
    let torn = [0xd0, 0x07, 0, 0, 1, 2, 3, 4, 5, 6];
    std::os::unix::fs::FileExt::write_all_at(&file, &torn, before as u64).unwrap();
    drop(file);
    cluster.start(2);
    let (used, _) = {
        let start = std::time::Instant::now();
        loop {
            let status = cluster.status();
            let up2 = status["servers"][1]["up"] == true;
            if up2 || start.elapsed() > Duration::from_secs(10) {
                break cluster.seats("cad");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert_eq!(used, 3);
    assert!(cluster.running(2), "{}", cluster.logs());
    let log = std::fs::read_to_string(cluster.log(2)).unwrap();
    assert!(log.contains("torn log tail truncated"), "{log}");
    assert!(log.contains("dropped 10 bytes"), "{log}");
    // The repaired log is the old one, and it grows again as #2 follows #1.
    take_seats(&cluster, 1);
    assert_eq!(cluster.seats("cad").0, 4);
    let start = std::time::Instant::now();
    while records_end(&std::fs::read(&log2).unwrap()) <= before {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "#2 wrote nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where the records of a log file end.
fn records_end(log: &[u8]) -> usize {
    *record_starts(log).last().unwrap()
}

/// Where each record of a log file starts, then where the last one ends: each is
/// `[u32 LE length][u32 crc][payload]`, and the zeros written ahead of them start with a
/// header of zeros.
fn record_starts(log: &[u8]) -> Vec<usize> {
    // After the file's header (`HAL-LOG\0` and the format).
    let mut offset = if log.starts_with(b"HAL-LOG\0") { 12 } else { 0 };
    let mut starts = vec![offset];
    while let Some(header) = log.get(offset..offset + 8) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        if header == [0; 8] || offset + 8 + len as usize > log.len() {
            break;
        }
        offset += 8 + len as usize;
        starts.push(offset);
    }
    starts
}

/// Sends `bytes` on a fresh connection and says whether the server closed it.
fn closed_after(port: u16, bytes: &[u8]) -> bool {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return true, // closed (or reset)
            Ok(_) => continue,             // a Refused frame before closing is fine
        }
    }
}

/// Sends `bytes` after the TLS handshake (as a client) and says whether the server closed
/// the connection.
fn closed_after_tls(cluster: &Cluster, bytes: &[u8]) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = support::wire::runtime();
    rt.block_on(async {
        let tls = support::wire::connector(&cluster.ca(), None);
        let localhost = std::net::Ipv4Addr::LOCALHOST;
        let link = support::wire::link(&tls, localhost, cluster.ports[0]).await;
        let mut stream = link.unwrap().into_inner();
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
        let mut buf = [0u8; 256];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(8), stream.read(&mut buf)).await;
            match read {
                Err(_) => return false,
                Ok(Ok(0) | Err(_)) => return true, // closed (or reset)
                Ok(Ok(_)) => continue,             // a Refused frame before closing is fine
            }
        }
    })
}

#[test]
fn junk_oversized_and_foreign_frames_close_only_their_connection() {
    let mut cluster = Cluster::new(TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let port = cluster.ports[0];
    // Junk where a TLS handshake should be: an HTTP request.
    assert!(closed_after(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    // Inside TLS: a frame header announcing 1 GiB.
    assert!(closed_after_tls(&cluster, &[0x40, 0, 0, 0, 1, 2, 3]));
    // A well-formed frame of protocol version 10 (this build speaks 8 and 9).
    assert!(closed_after_tls(&cluster, &[0, 0, 0, 2, 10, 0]));
    // A valid frame that does not decode.
    assert!(closed_after_tls(&cluster, &[0, 0, 0, 3, 1, 0xff, 0xff]));
    // A connection that never says anything is closed by the handshake timeout while
    // the server keeps serving others.
    let silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let out = cluster.verb(&["checkout", "cad", "--hold", "0s", "--json"]);
    assert!(out.status.success(), "{out:?}\n{}", cluster.logs());
    assert_eq!(json(&out)["server"], 1);
    drop(silent);
    assert!(cluster.running(1));
    let log = std::fs::read_to_string(cluster.log(1)).unwrap();
    assert!(log.contains("TLS handshake with 127.0.0.1"), "{log}");
    assert!(log.contains("over the limit"), "{log}");
    assert!(log.contains("protocol version 10"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_different_triad_order_is_refused_and_both_logs_say_why() {
    let mut cluster = Cluster::new(TIMING);
    // #2's list has #1 and #3 swapped.
    let mut swapped = cluster.triad();
    swapped.swap(0, 2);
    cluster.write_config(2, &swapped, "cad.lic", TIMING);
    cluster.start_all();
    // #1 and #3 agree: they form a majority and serve.
    cluster.wait_active(1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let log1 = std::fs::read_to_string(cluster.log(1)).unwrap();
    let log2 = std::fs::read_to_string(cluster.log(2)).unwrap();
    // #1 dials #2 as #2 (the certificate agrees) and #2 refuses the different list.
    assert!(
        log2.contains("refused a peer link: triad list differs"),
        "{log2}"
    );
    assert!(
        log1.contains("peer refused the link: triad list differs"),
        "{log1}"
    );
    // #2 dials #3's address as #1, and the certificate there says otherwise.
    assert!(
        log2.contains("peer refused the link: the server at")
            && log2.contains("is server #3 by its certificate, but server #1 is expected there"),
        "{log2}"
    );
}

/// A server started with another license file than its peers' is not refused: the triad
/// serves the one license the first leader put in the log. The odd server says how its
/// file differs, serves the triad's license, and writes it over its file (keeping its own
/// beside it), so that the three files agree from then on.
#[test]
fn a_server_with_a_different_license_file_serves_the_triads_and_says_so() {
    let mut cluster = Cluster::new(TIMING);
    let other = support::cluster::LICENSE.replace("COUNT = 5", "COUNT = 6");
    let other_path = write_license(cluster.dir.path(), "other.lic", &other);
    let other_text = std::fs::read_to_string(&other_path).unwrap();
    cluster.write_config(3, &cluster.triad(), "other.lic", TIMING);
    cluster.start_all();
    cluster.wait_active(1, Duration::from_secs(10));
    let ours = std::fs::read_to_string(cluster.dir.path().join("cad.lic")).unwrap();
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&other_path).unwrap() != ours {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "other.lic not replaced\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kept = cluster.dir.path().join("other.lic.previous");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), other_text);
    let status = cluster.status();
    let digests: Vec<&Value> = (0..3)
        .map(|i| &status["servers"][i]["license"]["digest"])
        .collect();
    assert!(digests.iter().all(|d| *d == digests[0]), "{status}");
    for i in 0..3 {
        assert_eq!(
            status["servers"][i]["peers"][0]["refused"],
            Value::Null,
            "{status}"
        );
    }
    let log1 = std::fs::read_to_string(cluster.log(1)).unwrap();
    let log3 = std::fs::read_to_string(cluster.log(3)).unwrap();
    let why = "license file differs between server";
    assert!(
        log1.contains(why) || log3.contains(why),
        "{}",
        cluster.logs()
    );
    assert!(log1.contains("cad (different terms)") || log3.contains("cad (different terms)"));
    assert!(log3.contains("kept as"), "{log3}");
    assert_eq!(status["features"][0]["count"], 5, "{status}");
}
