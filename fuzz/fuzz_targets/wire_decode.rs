//! Bytes into hal-net's frame decoder, as a connection would deliver them: split into
//! chunks of arbitrary sizes, under each limit a connection applies before and after the
//! handshake; and the same bytes into `decode_frame`. Nothing may panic, and a frame that
//! decodes re-encodes (`frame_bytes`) to a frame that decodes to the same message.
//!
//! Input layout: byte 0 picks the limit (bit 0) and the number of chunk sizes (bits 1–3),
//! the next bytes are the chunk sizes (cycled; 0 means 1), the rest is the stream.

#![no_main]

use bytes::BytesMut;
use hal_net::wire::{
    FRAME_BYTES_MAX_CLIENT, FRAME_BYTES_MAX_UNIDENTIFIED, Message, WireCodec, decode_frame,
    frame_bytes,
};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// Checks that `message` survives a round trip through its own encoding.
fn round_trips(message: &Message, max: usize) {
    let frame = frame_bytes(message).expect("a decoded message encodes");
    let mut buf = BytesMut::from(&frame[..]);
    let again = WireCodec::new(max)
        .decode(&mut buf)
        .expect("a re-encoded frame decodes")
        .expect("a re-encoded frame is whole");
    assert_eq!(&again, message, "a frame re-encodes to the same message");
    assert!(buf.is_empty(), "a re-encoded frame is one frame");
    let content = frame.get(4..).expect("a frame has a length prefix");
    assert_eq!(
        &decode_frame(content).expect("its content decodes"),
        message
    );
}

/// Feeds `stream` to a codec with limit `max`, `sizes` bytes at a time (cycled), and
/// decodes after each chunk until the codec wants more or refuses the stream.
fn decode_stream(stream: &[u8], sizes: &[u8], max: usize) {
    let mut codec = WireCodec::new(max);
    let mut buf = BytesMut::new();
    let mut rest = stream;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let size = sizes.next().map_or(rest.len(), |s| usize::from(*s).max(1));
        let (chunk, after) = rest.split_at(size.min(rest.len()));
        rest = after;
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(message)) => round_trips(&message, max),
                Ok(None) => break,
                // The connection is closed with the error: the rest is never read.
                Err(error) => {
                    let _ = error.to_string();
                    return;
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let max = if head & 1 == 0 {
        FRAME_BYTES_MAX_UNIDENTIFIED
    } else {
        FRAME_BYTES_MAX_CLIENT
    };
    let sizes_len = usize::from((head >> 1) & 7).min(rest.len());
    let (sizes, stream) = rest.split_at(sizes_len);
    decode_stream(stream, sizes, max);
    match decode_frame(stream) {
        Ok(message) => round_trips(&message, FRAME_BYTES_MAX_CLIENT.max(stream.len())),
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
