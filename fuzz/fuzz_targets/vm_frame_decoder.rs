//! A hostile guest controls every byte the host's frame decoder sees: it
//! must never panic, hang or allocate without bound, and whatever it
//! accepts must re-encode to a frame that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zlayer_vm_proto::{decode_frame, encode_frame, Decoder};

fuzz_target!(|data: &[u8]| {
    // First byte picks how the stream is chunked (transport reads vary).
    let (cut, stream) = match data.split_first() {
        Some((c, rest)) => ((*c as usize % 31) + 1, rest),
        None => return,
    };
    let mut dec = Decoder::new();
    for chunk in stream.chunks(cut) {
        dec.push(chunk);
        loop {
            match dec.next_frame() {
                Ok(Some(frame)) => {
                    let bytes = encode_frame(&frame).expect("a decoded frame re-encodes");
                    let again =
                        decode_frame(bytes[4], &bytes[5..]).expect("re-encoded frame decodes");
                    assert_eq!(again, frame);
                }
                Ok(None) => break,
                Err(e) if e.is_fatal() => return,
                Err(_) => {}
            }
        }
    }
    // The body decoder alone, on the raw input.
    if let Some((tag, payload)) = stream.split_first() {
        let _ = decode_frame(*tag, payload);
    }
});
