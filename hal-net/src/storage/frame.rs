//! The record framing of the storage files: `[u32 LE payload length][u32 LE crc32 of
//! payload][payload]`, the payload being postcard. Pure functions over byte buffers; the
//! files, and what a damaged frame means for them, are [`super::file`]'s business.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Bytes before the payload: its length and its crc32.
pub(super) const HEADER_LEN: usize = 8;

/// The largest payload written or read. Reading checks it before looking for the payload,
/// so a damaged length field is reported as damage instead of being believed.
pub(super) const PAYLOAD_MAX: usize = 256 << 20;

/// A payload over [`PAYLOAD_MAX`]: writing it would make a file that cannot be read back.
#[derive(Debug)]
pub(super) struct TooLarge {
    pub(super) bytes: usize,
}

/// Frames `value`.
pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, TooLarge> {
    // Our storage types have no serde shape postcard rejects, so failing is a bug.
    let payload = postcard::to_stdvec(value).expect("postcard encodes the storage types");
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|_| payload.len() <= PAYLOAD_MAX)
        .ok_or(TooLarge {
            bytes: payload.len(),
        })?;
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Why the bytes at an offset are not an intact frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Damage {
    /// Fewer than [`HEADER_LEN`] bytes left.
    ShortHeader { bytes: usize },
    /// The length field is over [`PAYLOAD_MAX`].
    TooLong { len: usize },
    /// The payload would run past the end of the buffer.
    PastEnd { len: usize, bytes: usize },
    /// The payload does not match its checksum.
    BadCrc,
    /// The checksum matches but the payload is not one value of the expected type.
    Undecodable { detail: String },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::ShortHeader { bytes } => {
                write!(
                    f,
                    "only {bytes} bytes left, a record header is {HEADER_LEN}"
                )
            }
            Damage::TooLong { len } => {
                write!(f, "length {len} exceeds the limit of {PAYLOAD_MAX} bytes")
            }
            Damage::PastEnd { len, bytes } => write!(
                f,
                "length {len} runs past the end of the file ({bytes} payload bytes left)"
            ),
            Damage::BadCrc => write!(f, "checksum mismatch"),
            Damage::Undecodable { detail } => write!(f, "undecodable payload: {detail}"),
        }
    }
}

/// The two fields of a frame's header, as found (not checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
    /// The payload length the frame claims.
    pub(super) len: usize,
    /// The crc32 of the payload as written.
    pub(super) crc: u32,
}

/// The header at `offset` of `buf`, if [`HEADER_LEN`] bytes are left there.
pub(super) fn header(buf: &[u8], offset: usize) -> Option<Header> {
    let header = buf.get(offset..)?.first_chunk::<HEADER_LEN>()?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    Some(Header {
        len: usize::try_from(len).unwrap_or(usize::MAX),
        crc,
    })
}

/// Reads the frame at `offset` of `buf` (`offset <= buf.len()`): its value and the offset
/// of the next frame.
pub(super) fn decode<T: DeserializeOwned>(buf: &[u8], offset: usize) -> Result<(T, usize), Damage> {
    let rest = buf.get(offset..).unwrap_or_default();
    let Header { len, crc } =
        header(buf, offset).ok_or(Damage::ShortHeader { bytes: rest.len() })?;
    if len > PAYLOAD_MAX {
        return Err(Damage::TooLong { len });
    }
    let body = &rest[HEADER_LEN..];
    let payload = body.get(..len).ok_or(Damage::PastEnd {
        len,
        bytes: body.len(),
    })?;
    if crc32fast::hash(payload) != crc {
        return Err(Damage::BadCrc);
    }
    let undecodable = |detail: String| Damage::Undecodable { detail };
    let (value, extra) =
        postcard::take_from_bytes::<T>(payload).map_err(|e| undecodable(e.to_string()))?;
    if !extra.is_empty() {
        return Err(undecodable(format!(
            "{} bytes after the value",
            extra.len()
        )));
    }
    Ok((value, offset + HEADER_LEN + len))
}

/// The payload length the checksum of the frame at `offset` vouches for, when it is not
/// the one its length field gives: the bytes after the header that decode as one `T`
/// (taken from all that follow, up to [`PAYLOAD_MAX`]) and whose crc32 is the header's.
/// A frame written whole whose length field was damaged afterwards has one; anything
/// else has one by chance only (one in 2^32), as one value decodes from a given start.
pub(super) fn vouched_len<T: DeserializeOwned>(buf: &[u8], offset: usize) -> Option<usize> {
    let Header { len, crc } = header(buf, offset)?;
    let start = offset + HEADER_LEN;
    let body = &buf[start..buf.len().min(start + PAYLOAD_MAX)];
    let (_, extra) = postcard::take_from_bytes::<T>(body).ok()?;
    let vouched = body.len() - extra.len();
    (vouched != len && crc32fast::hash(&body[..vouched]) == crc).then_some(vouched)
}

/// The first offset after `damaged` where an intact frame of `T` starts, if any.
///
/// Tells a torn tail (nothing intact after the damage) from damage in the middle. Every
/// offset is tried because a damaged length field hides where the next frame begins; most
/// offsets fail at once on a length past the end. This runs only on a damaged file.
pub(super) fn intact_after<T: DeserializeOwned>(buf: &[u8], damaged: usize) -> Option<usize> {
    (damaged + 1..buf.len()).find(|&offset| decode::<T>(buf, offset).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| encode(v).unwrap()).collect()
    }

    #[test]
    fn round_trip_and_next_offset() {
        let buf = frames(&[7, 300]);
        let (first, next) = decode::<u64>(&buf, 0).unwrap();
        assert_eq!(first, 7);
        assert_eq!(next, HEADER_LEN + 1, "postcard writes 7 as one varint byte");
        let (second, end) = decode::<u64>(&buf, next).unwrap();
        assert_eq!(second, 300);
        assert_eq!(end, buf.len());
    }

    #[test]
    fn each_kind_of_damage_is_named() {
        let buf = frames(&[300]);
        assert_eq!(
            decode::<u64>(&buf[..5], 0).unwrap_err(),
            Damage::ShortHeader { bytes: 5 }
        );
        assert_eq!(
            decode::<u64>(&buf[..buf.len() - 1], 0).unwrap_err(),
            Damage::PastEnd { len: 2, bytes: 1 }
        );
        let mut flipped = buf.clone();
        flipped[HEADER_LEN] ^= 1;
        assert_eq!(decode::<u64>(&flipped, 0).unwrap_err(), Damage::BadCrc);
        // A checksum-valid empty payload (what a zero-filled tail looks like) is no u64.
        let zeros = [0u8; HEADER_LEN];
        assert!(matches!(
            decode::<u64>(&zeros, 0).unwrap_err(),
            Damage::Undecodable { .. }
        ));
    }

    #[test]
    fn a_length_over_the_limit_is_damage_before_any_read() {
        let mut buf = frames(&[1]);
        let len = u32::try_from(PAYLOAD_MAX + 1).unwrap();
        buf[..4].copy_from_slice(&len.to_le_bytes());
        assert_eq!(
            decode::<u64>(&buf, 0).unwrap_err(),
            Damage::TooLong {
                len: PAYLOAD_MAX + 1
            }
        );
    }

    #[test]
    fn the_checksum_vouches_for_a_frame_whose_length_field_is_damaged() {
        let mut buf = frames(&[300]);
        buf.extend([0; 40]);
        assert_eq!(
            vouched_len::<u64>(&buf, 0),
            None,
            "intact: nothing to vouch for"
        );
        for len in [0u32, 1, 30, 1 << 20] {
            let mut damaged = buf.clone();
            damaged[..4].copy_from_slice(&len.to_le_bytes());
            assert_eq!(vouched_len::<u64>(&damaged, 0), Some(2), "length {len}");
        }
        // A damaged payload or checksum leaves nothing to vouch with.
        let mut payload = buf.clone();
        payload[HEADER_LEN + 1] ^= 1;
        payload[0] = 30;
        assert_eq!(vouched_len::<u64>(&payload, 0), None);
        let mut crc = buf.clone();
        crc[5] ^= 1;
        crc[0] = 30;
        assert_eq!(vouched_len::<u64>(&crc, 0), None);
        assert_eq!(vouched_len::<u64>(&buf[..5], 0), None, "no header");
    }

    #[test]
    fn intact_after_finds_the_next_frame_even_with_a_damaged_length() {
        let mut buf = frames(&[1, 2, 3]);
        let second = HEADER_LEN + 1;
        buf[second] = 0xff;
        assert_eq!(intact_after::<u64>(&buf, second), Some(2 * second));
        assert_eq!(intact_after::<u64>(&buf, 2 * second), None);
    }
}
