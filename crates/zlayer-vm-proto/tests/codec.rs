//! Round-trip and rejection tests of the frame codec.

use proptest::prelude::*;
use zlayer_vm_proto::*;

fn arb_env() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((".{0,8}", ".{0,8}"), 0..4)
}

fn arb_msg() -> impl Strategy<Value = Msg> {
    let bytes = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        (
            prop::collection::vec(".{0,12}", 0..4),
            arb_env(),
            proptest::option::of(".{0,8}"),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            proptest::option::of(".{0,8}"),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(
                |(argv, env, cwd, uid, gid, user, open_stdin, poweroff_on_exit)| Msg::Run(
                    RunRequest {
                        argv,
                        env,
                        cwd,
                        uid,
                        gid,
                        user,
                        open_stdin,
                        poweroff_on_exit
                    }
                )
            ),
        (
            prop::collection::vec(".{0,12}", 0..4),
            arb_env(),
            proptest::option::of(".{0,8}"),
            any::<Option<u32>>(),
            any::<Option<u32>>(),
            proptest::option::of(".{0,8}")
        )
            .prop_map(|(argv, env, cwd, uid, gid, user)| Msg::Exec(ExecRequest {
                argv,
                env,
                cwd,
                uid,
                gid,
                user
            })),
        any::<i32>().prop_map(|signum| Msg::Signal { signum }),
        bytes.clone().prop_map(Msg::Stdin),
        Just(Msg::StdinEof),
        (".{0,8}", ".{0,16}", any::<bool>()).prop_map(|(tag, target, readonly)| Msg::Mount {
            tag,
            target,
            readonly
        }),
        any::<u16>().prop_map(|port| Msg::Forward { port }),
        (any::<i64>(), any::<u32>())
            .prop_map(|(unix_secs, nanos)| Msg::SetTime { unix_secs, nanos }),
        Just(Msg::Shutdown),
        Just(Msg::Close),
        Just(Msg::QueryStats),
        any::<u32>().prop_map(|version| Msg::Ready { version }),
        any::<u32>().prop_map(|pid| Msg::Started { pid }),
        bytes.clone().prop_map(Msg::Stdout),
        bytes.clone().prop_map(Msg::Stderr),
        any::<i32>().prop_map(|code| Msg::Exited { code }),
        ".{0,32}".prop_map(|message| Msg::Error { message }),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c)| Msg::Stats(GuestStats {
            mem_total_bytes: a,
            mem_available_bytes: b,
            processes: c
        })),
        (any::<bool>(), any::<u64>(), bytes).prop_map(|(err, unix_nanos, data)| Msg::Log {
            stream: if err {
                OutputStream::Stderr
            } else {
                OutputStream::Stdout
            },
            unix_nanos,
            data
        }),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(channel in any::<u32>(), msg in arb_msg()) {
        let frame = Frame::new(channel, msg);
        let bytes = encode_frame(&frame).unwrap();
        let len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        prop_assert_eq!(len, bytes.len() - 4);
        prop_assert_eq!(bytes[4], frame.msg.tag());
        let back = decode_frame(bytes[4], &bytes[5..]).unwrap();
        prop_assert_eq!(&back, &frame);
        let mut cursor = std::io::Cursor::new(bytes);
        prop_assert_eq!(read_frame(&mut cursor).unwrap(), Some(frame));
    }

    #[test]
    fn decoder_reassembles_any_chunking(msgs in prop::collection::vec(arb_msg(), 1..8), cut in 1usize..17) {
        let frames: Vec<Frame> = msgs.into_iter().enumerate().map(|(i, m)| Frame::new(i as u32, m)).collect();
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend(encode_frame(f).unwrap());
        }
        let mut dec = Decoder::new();
        let mut out = Vec::new();
        for chunk in wire.chunks(cut) {
            dec.push(chunk);
            while let Some(f) = dec.next_frame().unwrap() {
                out.push(f);
            }
        }
        prop_assert_eq!(out, frames);
        prop_assert_eq!(dec.pending(), 0);
    }

    #[test]
    fn decoder_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut dec = Decoder::new();
        dec.push(&bytes);
        for _ in 0..600 {
            match dec.next_frame() {
                Ok(None) => break,
                Ok(Some(_)) => {}
                Err(e) if e.is_fatal() => break,
                Err(_) => {}
            }
        }
    }
}

fn raw(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 1) as u32).to_le_bytes().to_vec();
    v.push(tag);
    v.extend_from_slice(payload);
    v
}

#[test]
fn unknown_tag_is_rejected_and_skipped() {
    let mut dec = Decoder::new();
    dec.push(&raw(0x42, &[0, 1, 2]));
    dec.push(&encode_frame(&Frame::new(3, Msg::Exited { code: 7 })).unwrap());
    let err = dec.next_frame().unwrap_err();
    assert!(matches!(err, ProtoError::UnknownTag { tag: 0x42 }), "{err}");
    assert!(!err.is_fatal());
    assert_eq!(
        dec.next_frame().unwrap(),
        Some(Frame::new(3, Msg::Exited { code: 7 }))
    );
}

#[test]
fn tag_payload_mismatch_is_rejected() {
    // An Exited payload (channel 1, code 7) under the Run tag.
    let exited = encode_frame(&Frame::new(1, Msg::Exited { code: 7 })).unwrap();
    let err = decode_frame(0x01, &exited[5..]).unwrap_err();
    assert!(
        matches!(err, ProtoError::BadPayload { name: "Run", .. }),
        "{err}"
    );
    // A Started payload with trailing bytes.
    let mut started = encode_frame(&Frame::new(1, Msg::Started { pid: 9 })).unwrap()[5..].to_vec();
    started.push(0);
    let err = decode_frame(0x81, &started).unwrap_err();
    assert!(err.to_string().contains("trailing"), "{err}");
    // A unit message with a body.
    assert!(decode_frame(0x09, &[0, 1]).is_err());
    // An invalid UTF-8 string.
    assert!(decode_frame(0x85, &[0, 2, 0xff, 0xfe]).is_err());
    // A truncated payload.
    assert!(decode_frame(0x82, &[0, 10, 1, 2]).is_err());
}

#[test]
fn oversized_and_empty_frames_poison_the_decoder() {
    let mut dec = Decoder::new();
    dec.push(&((MAX_FRAME_LEN as u32) + 1).to_le_bytes());
    let err = dec.next_frame().unwrap_err();
    assert!(
        matches!(err, ProtoError::FrameTooLarge { .. }) && err.is_fatal(),
        "{err}"
    );
    assert!(matches!(dec.next_frame(), Err(ProtoError::Poisoned)));
    dec.reset();
    dec.push(&0u32.to_le_bytes());
    assert!(matches!(dec.next_frame(), Err(ProtoError::EmptyFrame)));
    dec.reset();
    dec.push(&encode_frame(&Frame::new(0, Msg::Shutdown)).unwrap());
    assert_eq!(
        dec.next_frame().unwrap(),
        Some(Frame::new(0, Msg::Shutdown))
    );
}

#[test]
fn encode_refuses_frames_over_the_limit() {
    let err = encode_frame(&Frame::new(0, Msg::Stdout(vec![0; MAX_FRAME_LEN]))).unwrap_err();
    assert!(matches!(err, ProtoError::FrameTooLarge { .. }));
    // Just under the limit is fine.
    let ok = encode_frame(&Frame::new(0, Msg::Stdout(vec![0; MAX_FRAME_LEN - 16]))).unwrap();
    assert!(ok.len() <= MAX_FRAME_LEN + HEADER_LEN);
}

#[test]
fn read_frame_reports_clean_eof_and_truncation() {
    let mut empty = std::io::Cursor::new(Vec::<u8>::new());
    assert_eq!(read_frame(&mut empty).unwrap(), None);
    let bytes = encode_frame(&Frame::new(0, Msg::Stdout(b"hello".to_vec()))).unwrap();
    let mut cut = std::io::Cursor::new(bytes[..bytes.len() - 1].to_vec());
    assert!(read_frame(&mut cut).unwrap_err().is_fatal());
}

#[test]
fn directions_follow_the_tag_high_bit() {
    assert_eq!(Msg::Shutdown.direction(), Direction::ToGuest);
    assert_eq!(Msg::Exited { code: 0 }.direction(), Direction::ToHost);
    assert_eq!(Msg::Run(RunRequest::default()).name(), "Run");
}
