//! Content store: verification, atomic visibility, resumable ingest.

use zlayer_image::{ContentStore, Digest, Error};

fn store() -> (tempfile::TempDir, ContentStore) {
    let tmp = tempfile::tempdir().unwrap();
    let cs = ContentStore::open(&tmp.path().join("content")).unwrap();
    (tmp, cs)
}

#[test]
fn layout_files_exist_and_blobs_roundtrip() {
    let (tmp, cs) = store();
    let root = tmp.path().join("content");
    assert!(root.join("oci-layout").is_file());
    assert!(root.join("index.json").is_file());
    let data = b"hello blob".to_vec();
    let d = Digest::of(&data);
    assert!(!cs.has_blob(&d));
    cs.put_blob(&d, &data).unwrap();
    assert!(cs.has_blob(&d));
    assert_eq!(cs.blob_path(&d), root.join("blobs/sha256").join(d.hex()));
    assert_eq!(cs.read_blob(&d).unwrap(), data);
    // Idempotent.
    cs.put_blob(&d, &data).unwrap();
    assert_eq!(cs.list_blobs().unwrap(), vec![d]);
}

#[test]
fn corrupt_blob_is_rejected_and_never_visible() {
    let (tmp, cs) = store();
    let good = b"the real content".to_vec();
    let d = Digest::of(&good);
    let err = cs.put_blob(&d, b"the fake content").unwrap_err();
    match &err {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, &d.to_string());
            assert_eq!(actual, &Digest::of(b"the fake content").to_string());
        }
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().contains(&d.to_string()));
    assert!(!cs.has_blob(&d));

    // Through the streaming API: wrong bytes with the right size.
    let mut ing = cs.begin_ingest(&d, Some(good.len() as u64)).unwrap();
    ing.write_all(b"THE REAL CONTENT").unwrap();
    let err = ing.commit().unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(!cs.has_blob(&d));
    // The bad partial was discarded.
    let ingest_dir = tmp.path().join("content/ingest");
    assert!(!ingest_dir.join(format!("{}.partial", d.hex())).exists());
    let err = cs.read_blob(&d).unwrap_err();
    assert!(matches!(err, Error::BlobNotFound { .. }), "{err}");
}

#[test]
fn truncated_and_oversized_blobs_are_rejected() {
    let (_tmp, cs) = store();
    let data = vec![7u8; 10_000];
    let d = Digest::of(&data);
    let mut ing = cs.begin_ingest(&d, Some(data.len() as u64)).unwrap();
    ing.write_all(&data[..5000]).unwrap();
    match ing.commit().unwrap_err() {
        Error::SizeMismatch {
            expected, actual, ..
        } => {
            assert_eq!((expected, actual), (10_000, 5000));
        }
        e => panic!("unexpected {e}"),
    }
    assert!(!cs.has_blob(&d));

    let mut ing = cs.begin_ingest(&d, Some(data.len() as u64)).unwrap();
    assert_eq!(ing.offset(), 0, "the failed partial must not be resumed");
    ing.write_all(&data).unwrap();
    let err = ing.write_all(b"extra").unwrap_err();
    assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
    assert!(!ing.is_complete());
    assert!(ing.commit().is_err(), "a failed ingest cannot be committed");
    assert!(!cs.has_blob(&d));

    // Without a size, truncation is still caught by the digest.
    let mut ing = cs.begin_ingest(&d, None).unwrap();
    ing.write_all(&data[..9999]).unwrap();
    assert!(matches!(
        ing.commit().unwrap_err(),
        Error::DigestMismatch { .. }
    ));
    assert!(!cs.has_blob(&d));
}

#[test]
fn interrupted_ingest_resumes_from_partial() {
    let (_tmp, cs) = store();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let d = Digest::of(&data);
    {
        let mut ing = cs.begin_ingest(&d, Some(data.len() as u64)).unwrap();
        ing.write_all(&data[..70_000]).unwrap();
        // Dropped without commit: simulates a dropped connection.
    }
    assert!(!cs.has_blob(&d));
    let mut ing = cs.begin_ingest(&d, Some(data.len() as u64)).unwrap();
    assert_eq!(ing.offset(), 70_000);
    ing.write_all(&data[70_000..]).unwrap();
    let path = ing.commit().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);

    // A partial with garbage is caught at commit, not trusted.
    let other: Vec<u8> = vec![1u8; 1000];
    let od = Digest::of(&other);
    {
        let mut ing = cs.begin_ingest(&od, Some(1000)).unwrap();
        ing.write_all(&[2u8; 400]).unwrap();
    }
    let mut ing = cs.begin_ingest(&od, Some(1000)).unwrap();
    assert_eq!(ing.offset(), 400);
    ing.write_all(&other[400..]).unwrap();
    assert!(matches!(
        ing.commit().unwrap_err(),
        Error::DigestMismatch { .. }
    ));
    assert!(!cs.has_blob(&od));

    // Abort deletes the partial.
    let mut ing = cs.begin_ingest(&od, Some(1000)).unwrap();
    ing.write_all(&other[..10]).unwrap();
    ing.abort();
    assert_eq!(cs.begin_ingest(&od, Some(1000)).unwrap().offset(), 0);
}

#[test]
fn ingest_of_present_blob_is_complete() {
    let (_tmp, cs) = store();
    let d = Digest::of(b"x");
    cs.put_blob(&d, b"x").unwrap();
    let ing = cs.begin_ingest(&d, Some(1)).unwrap();
    assert!(ing.is_complete());
    assert_eq!(ing.offset(), 1);
    assert_eq!(ing.commit().unwrap(), cs.blob_path(&d));
}

#[test]
fn concurrent_ingests_of_one_blob_serialise() {
    let (_tmp, cs) = store();
    let data = vec![42u8; 1 << 20];
    let d = Digest::of(&data);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let mut ing = cs.begin_ingest(&d, Some(data.len() as u64)).unwrap();
                if !ing.is_complete() {
                    assert_eq!(ing.offset(), 0);
                    for chunk in data.chunks(64 * 1024) {
                        ing.write_all(chunk).unwrap();
                    }
                }
                ing.commit().unwrap();
            });
        }
    });
    assert_eq!(cs.read_blob(&d).unwrap(), data);
}

#[test]
fn put_stream_computes_digest() {
    let (_tmp, cs) = store();
    let data = vec![9u8; 300_000];
    let (d, n) = cs.put_stream(&data[..]).unwrap();
    assert_eq!(d, Digest::of(&data));
    assert_eq!(n, 300_000);
    assert_eq!(cs.read_blob(&d).unwrap(), data);
}
