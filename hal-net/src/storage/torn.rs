//! What damage where a log's intact records end means: a write a crash cut short (a
//! *torn* write: the log is cut there and the server starts), or damage no crash explains
//! (corruption: the server must not start, or it would drop a committed record
//! silently). Pure functions over the log's bytes; cutting and reporting are
//! [`super::file`]'s business.
//!
//! # What a torn write looks like
//!
//! A record is written once, at the end of the records, over bytes that read as zeros
//! (the zeros written ahead of the records, or the space past the end of the file), and
//! the call that writes it returns only after `fdatasync`. A crash before the sync may
//! keep any subset of the record's disk sectors: a sector is written whole or not at all
//! (the 512-byte unit disks write atomically), and one not written still reads as zeros.
//! It may also leave the file ending inside the record. So a torn record, seen sector by
//! sector, is the record as meant with some of its *sector chunks* reading all zero (a
//! chunk: the bytes of one 512-byte-aligned sector of the file, by file offset, that
//! belong to the record), possibly cut by the end of the file, and only zeros after it.
//! This is etcd's rule (`wal/decoder.go`, `isTornEntry`), applied to the header as well.
//!
//! # The rule
//!
//! The damage is at offset `off`: no intact record starts there, and the bytes from `off`
//! to the end of the file are not all zero (all zero is the end of the log, no damage).
//! The first of these that applies decides:
//!
//! 1. Fewer than [`HEADER_LEN`] bytes are left: a header cut by the end of the file.
//!    Torn.
//! 2. The length field is over [`PAYLOAD_MAX`]: corruption. Zeroing bytes of a
//!    little-endian number can only lower it, so tearing never makes a length too long.
//! 3. An intact record starts anywhere after `off`: a torn write is the last thing in the
//!    file, so this is corruption.
//! 4. A sector chunk holding a byte of the length field (the chunks of `off..` to the end
//!    of the file) is all zero: the tear may have taken the length, so where the record
//!    ends is unknown. Torn.
//! 5. The checksum field matches the bytes after the header read as one record of
//!    another length than the field says ([`frame::vouched_len`]): the record was written
//!    whole and its length field, whose sectors were written, was damaged since.
//!    Corruption.
//! 6. Otherwise the length is believed, and the record is `off..end`. If `end` is past
//!    the end of the file, the record was cut by it: torn.
//! 7. The record is whole in the file. It is torn only if its checksum fails, some
//!    sector chunk of `off..end` is all zero, and every byte from `end` to the end of the
//!    file is zero. Anything else is corruption: a complete record whose checksum fails
//!    (disk corruption, not a torn write), nonzero bytes after it, or a payload that does
//!    not decode under a checksum that matches.
//!
//! # What the rule cannot tell apart
//!
//! Corruption of the last record that leaves a sector chunk of it all zero has the shape
//! of a torn write and is cut off as one, as etcd does: a sector zeroed, or any damage to
//! a last record whose own bytes hold an all-zero chunk already (in practice its last
//! bytes, when they encode zeros and fall just past a sector boundary: a record ends
//! there about once in 512). Every other damage to the last record is corruption, its
//! length and checksum fields included, and no record before the last is ever cut off.

use std::ops::Range;

use serde::de::DeserializeOwned;

use super::frame::{self, HEADER_LEN, Header, PAYLOAD_MAX};

/// The unit a disk writes whole: a sector of a torn write is written or reads as zeros.
pub(super) const SECTOR: usize = 512;

/// The length field's bytes, from the start of a record.
const LEN_FIELD: Range<usize> = 0..4;

/// What the damage at an offset of a log is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// A write cut short by a crash: the log ends at the offset.
    Torn,
    /// Damage no crash explains; why, for the operator.
    Corrupt(String),
}

/// Judges the damage at `offset` of the log `buf` by the rule of the module
/// documentation, reading records as `T`. `damage` is why no intact record starts there.
pub(super) fn judge<T: DeserializeOwned>(
    buf: &[u8],
    offset: usize,
    damage: &frame::Damage,
) -> Verdict {
    assert!(offset <= buf.len(), "damage at {offset} of {}", buf.len());
    assert!(
        buf[offset..].iter().any(|&b| b != 0),
        "zeros at {offset} are the end of the log, not damage"
    );
    let Some(Header { len, .. }) = frame::header(buf, offset) else {
        return Verdict::Torn;
    };
    if len > PAYLOAD_MAX {
        return Verdict::Corrupt(damage.to_string());
    }
    if let Some(next) = frame::intact_after::<T>(buf, offset) {
        return Verdict::Corrupt(format!("{damage}, yet an intact record follows at {next}"));
    }
    if length_unwritten(buf, offset) {
        return Verdict::Torn;
    }
    if let Some(vouched) = frame::vouched_len::<T>(buf, offset) {
        return Verdict::Corrupt(format!(
            "a complete record whose length field is damaged: it says {len} bytes, the \
             checksum matches {vouched}; disk corruption, not a torn write"
        ));
    }
    let end = offset + HEADER_LEN + len;
    if end > buf.len() {
        return Verdict::Torn;
    }
    whole_record(buf, offset..end, damage)
}

/// Rule 4: whether a sector chunk holding a byte of the length field at `offset` reads
/// all zero.
fn length_unwritten(buf: &[u8], offset: usize) -> bool {
    let field = offset + LEN_FIELD.start..offset + LEN_FIELD.end;
    sector_chunks(offset..buf.len())
        .take_while(|chunk| chunk.start < field.end)
        .any(|chunk| is_zero(&buf[chunk]))
}

/// Rule 7: the record `record`, whole in `buf`, that failed to read.
fn whole_record(buf: &[u8], record: Range<usize>, damage: &frame::Damage) -> Verdict {
    if !matches!(damage, frame::Damage::BadCrc) {
        return Verdict::Corrupt(format!(
            "{damage}, under a checksum that matches: not a torn write"
        ));
    }
    if let Some(at) = first_nonzero(buf, record.end) {
        return Verdict::Corrupt(format!(
            "a record whose checksum fails, with a nonzero byte at {at} after its end at \
             {}: a torn write leaves only zeros after it",
            record.end
        ));
    }
    if !sector_chunks(record).any(|chunk| is_zero(&buf[chunk])) {
        return Verdict::Corrupt(
            "a complete record whose checksum fails: disk corruption, not a torn write".into(),
        );
    }
    Verdict::Torn
}

/// `range` split at the file's sector boundaries: its first chunk runs to the first
/// boundary after its start, its last from the last boundary before its end.
pub(super) fn sector_chunks(range: Range<usize>) -> impl Iterator<Item = Range<usize>> {
    let Range { start, end } = range;
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= end {
            return None;
        }
        let next = ((at / SECTOR + 1) * SECTOR).min(end);
        let chunk = at..next;
        at = next;
        Some(chunk)
    })
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// The first nonzero byte of `buf` at or after `from`.
fn first_nonzero(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.iter().position(|&b| b != 0).map(|at| from + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of a `Vec<u64>` of `n` values, each encoded in two bytes (none zero).
    fn record(n: usize) -> Vec<u8> {
        frame::encode(&vec![300u64; n]).unwrap()
    }

    /// `pad` zero bytes (a record before it, in effect), `frame`, then `after` zeros.
    fn log_with(pad: usize, frame: &[u8], after: usize) -> Vec<u8> {
        let mut buf = vec![0; pad];
        buf.extend_from_slice(frame);
        buf.resize(buf.len() + after, 0);
        buf
    }

    fn verdict(buf: &[u8], offset: usize) -> Verdict {
        let damage = frame::decode::<Vec<u64>>(buf, offset).unwrap_err();
        judge::<Vec<u64>>(buf, offset, &damage)
    }

    fn is_corrupt(verdict: &Verdict, words: &str) -> bool {
        matches!(verdict, Verdict::Corrupt(detail) if detail.contains(words))
    }

    #[test]
    fn sector_chunks_split_at_the_files_boundaries() {
        let chunks: Vec<_> = sector_chunks(500..1100).collect();
        assert_eq!(chunks, [500..512, 512..1024, 1024..1100]);
        let whole: Vec<_> = sector_chunks(512..1024).collect();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0], 512..1024);
        assert_eq!(sector_chunks(7..7).count(), 0);
    }

    #[test]
    fn a_header_cut_by_the_end_of_the_file_is_torn() {
        let frame = record(10);
        let buf = log_with(100, &frame[..5], 0);
        assert_eq!(verdict(&buf, 100), Verdict::Torn);
    }

    #[test]
    fn a_record_cut_by_the_end_of_the_file_is_torn() {
        let frame = record(600);
        let buf = log_with(100, &frame[..700], 0);
        assert_eq!(verdict(&buf, 100), Verdict::Torn);
    }

    #[test]
    fn zeroed_trailing_sectors_with_zeros_after_are_torn() {
        let frame = record(600);
        let mut buf = log_with(100, &frame, 3000);
        let end = 100 + frame.len();
        buf[1024..end].fill(0);
        assert_eq!(verdict(&buf, 100), Verdict::Torn);
        // A zeroed sector in the middle, as disks may write out of order.
        let mut buf = log_with(100, &frame, 3000);
        buf[512..1024].fill(0);
        assert_eq!(verdict(&buf, 100), Verdict::Torn);
    }

    #[test]
    fn zeros_that_do_not_fill_a_sector_are_no_torn_write() {
        // The record's bytes from 1000 on zeroed: not a whole sector chunk.
        let frame = record(600);
        let mut buf = log_with(100, &frame, 3000);
        buf[1000..1100].fill(0);
        assert!(is_corrupt(&verdict(&buf, 100), "a complete record"));
    }

    #[test]
    fn a_byte_flipped_in_a_complete_last_record_is_corruption() {
        let frame = record(600);
        for at in [4, 7, 8, 300, 900, frame.len() - 1] {
            let mut buf = log_with(100, &frame, 3000);
            buf[100 + at] ^= 0x21;
            let verdict = verdict(&buf, 100);
            assert!(
                is_corrupt(&verdict, "not a torn write"),
                "{at}: {verdict:?}"
            );
        }
    }

    #[test]
    fn a_damaged_length_field_is_corruption() {
        let frame = record(600);
        let len = frame.len() - HEADER_LEN;
        // Longer (into the zeros, past the end of the file), shorter, zero.
        for (new_len, after) in [(len + 900, 3000), (len + 900, 0), (len - 1, 3000), (0, 0)] {
            let mut buf = log_with(100, &frame, after);
            let field = u32::try_from(new_len).unwrap().to_le_bytes();
            buf[100..104].copy_from_slice(&field);
            let verdict = verdict(&buf, 100);
            assert!(
                is_corrupt(&verdict, "length field is damaged"),
                "{new_len}: {verdict:?}"
            );
        }
        let mut buf = log_with(100, &frame, 3000);
        buf[103] = 0x7f;
        assert!(is_corrupt(&verdict(&buf, 100), "exceeds the limit"));
    }

    #[test]
    fn a_header_whose_sector_was_not_written_is_torn() {
        // The record straddles 512: its first chunk (header included) reads zero, the
        // rest was written, checksum included.
        let frame = record(600);
        let mut buf = log_with(300, &frame, 3000);
        buf[300..512].fill(0);
        assert_eq!(verdict(&buf, 300), Verdict::Torn);
        // The same with the length field split over two sectors, the first unwritten:
        // the checksum, written whole, matches the payload, yet the length's zeros are a
        // sector's.
        let mut buf = log_with(510, &frame, 3000);
        buf[510..512].fill(0);
        assert_eq!(
            frame::vouched_len::<Vec<u64>>(&buf, 510),
            Some(frame.len() - HEADER_LEN)
        );
        assert_eq!(verdict(&buf, 510), Verdict::Torn);
    }

    #[test]
    fn damage_with_anything_after_it_is_corruption() {
        let frame = record(600);
        let mut buf = log_with(100, &frame, 3000);
        let end = 100 + frame.len();
        buf[1024..end].fill(0);
        buf[end + 10] = 1;
        assert!(is_corrupt(&verdict(&buf, 100), "only zeros after"));
        // An intact record after the damage.
        let mut buf = log_with(100, &frame, 0);
        buf[1024..end].fill(0);
        buf.extend(record(3));
        buf.resize(buf.len() + 100, 0);
        assert!(is_corrupt(&verdict(&buf, 100), "intact record follows"));
    }
}
