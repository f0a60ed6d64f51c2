//! Reference and digest parsing.

use zlayer_image::{Digest, Error, Reference};

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// input, registry, repository, tag, has digest, canonical form.
type Case<'a> = (String, &'a str, &'a str, Option<&'a str>, bool, String);

#[test]
fn parses_reference_table() {
    // input, registry, repository, tag, digest?, canonical
    let dig = format!("sha256:{HEX}");
    let cases: Vec<Case> = vec![
        (
            "alpine".into(),
            "docker.io",
            "library/alpine",
            Some("latest"),
            false,
            "docker.io/library/alpine:latest".into(),
        ),
        (
            "alpine:3.19".into(),
            "docker.io",
            "library/alpine",
            Some("3.19"),
            false,
            "docker.io/library/alpine:3.19".into(),
        ),
        (
            "docker.io/library/alpine:latest".into(),
            "docker.io",
            "library/alpine",
            Some("latest"),
            false,
            "docker.io/library/alpine:latest".into(),
        ),
        (
            "index.docker.io/library/alpine".into(),
            "docker.io",
            "library/alpine",
            Some("latest"),
            false,
            "docker.io/library/alpine:latest".into(),
        ),
        (
            "user/app:v1".into(),
            "docker.io",
            "user/app",
            Some("v1"),
            false,
            "docker.io/user/app:v1".into(),
        ),
        (
            format!("localhost:5000/a/b@{dig}"),
            "localhost:5000",
            "a/b",
            None,
            true,
            format!("localhost:5000/a/b@{dig}"),
        ),
        (
            format!("localhost:5000/a/b:t@{dig}"),
            "localhost:5000",
            "a/b",
            Some("t"),
            true,
            format!("localhost:5000/a/b:t@{dig}"),
        ),
        (
            "localhost/zlayer/busybox".into(),
            "localhost",
            "zlayer/busybox",
            Some("latest"),
            false,
            "localhost/zlayer/busybox:latest".into(),
        ),
        (
            "ghcr.io/org/sub/img:1.2.3-rc_1".into(),
            "ghcr.io",
            "org/sub/img",
            Some("1.2.3-rc_1"),
            false,
            "ghcr.io/org/sub/img:1.2.3-rc_1".into(),
        ),
        (
            "127.0.0.1:5000/x".into(),
            "127.0.0.1:5000",
            "x",
            Some("latest"),
            false,
            "127.0.0.1:5000/x:latest".into(),
        ),
        (
            "my-reg.example.com/a__b/c.d".into(),
            "my-reg.example.com",
            "a__b/c.d",
            Some("latest"),
            false,
            "my-reg.example.com/a__b/c.d:latest".into(),
        ),
    ];
    for (input, reg, repo, tag, has_digest, canonical) in cases {
        let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(r.registry(), reg, "{input}");
        assert_eq!(r.repository(), repo, "{input}");
        assert_eq!(r.tag(), tag, "{input}");
        assert_eq!(r.digest().is_some(), has_digest, "{input}");
        assert_eq!(r.to_string(), canonical, "{input}");
        // The canonical form parses back to the same reference.
        assert_eq!(Reference::parse(&canonical).unwrap(), r, "{input}");
    }
}

#[test]
fn rejects_bad_references_with_clear_errors() {
    for bad in [
        "",
        "Alpine",
        "alpine:",
        "alpine:-bad",
        "alpine::x",
        "a//b",
        "alpine/",
        "/alpine",
        "alpine@sha256:short",
        "alpine@md5:0123",
        "alp ine",
        "localhost:99999/x",
        "-alpine",
        "a..b",
    ] {
        match Reference::parse(bad) {
            Err(Error::InvalidReference { input, reason }) => {
                assert_eq!(input, bad);
                assert!(!reason.is_empty());
            }
            other => panic!("{bad:?} should be rejected, got {other:?}"),
        }
    }
    let msg = Reference::parse("Alpine").unwrap_err().to_string();
    assert!(
        msg.contains("\"Alpine\"") && msg.contains("lowercase"),
        "{msg}"
    );
}

#[test]
fn equivalent_spellings_cover_docker_hub_short_forms() {
    let r = Reference::parse("alpine").unwrap();
    let s = r.equivalent_spellings();
    assert_eq!(s[0], "docker.io/library/alpine:latest");
    for want in [
        "alpine",
        "alpine:latest",
        "docker.io/library/alpine",
        "docker.io/alpine:latest",
        "library/alpine",
    ] {
        assert!(s.iter().any(|x| x == want), "missing {want} in {s:?}");
    }
    for spelling in &s {
        assert_eq!(Reference::parse(spelling).unwrap(), r, "{spelling}");
    }
    let other = Reference::parse("localhost:5000/a/b:v2").unwrap();
    assert_eq!(
        other.equivalent_spellings(),
        vec!["localhost:5000/a/b:v2".to_string()]
    );
    assert_ne!(Reference::parse("alpine:3.19").unwrap(), r);
}

#[test]
fn digest_parsing() {
    let d: Digest = format!("sha256:{HEX}").parse().unwrap();
    assert_eq!(d.algorithm(), "sha256");
    assert_eq!(d.hex(), HEX);
    assert_eq!(d.to_string(), format!("sha256:{HEX}"));
    assert_eq!(
        Digest::of(b""),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            .parse()
            .unwrap()
    );
    for bad in [
        HEX.to_string(),
        format!("sha512:{HEX}"),
        format!("sha256:{}", &HEX[1..]),
        format!("sha256:{}", HEX.to_uppercase()),
        format!("sha256:{}g", &HEX[1..]),
        "sha256:".to_string(),
    ] {
        let e = bad.parse::<Digest>().unwrap_err();
        assert!(matches!(e, Error::InvalidDigest { .. }), "{bad}: {e}");
        assert!(e.to_string().contains("sha256:"), "{e}");
    }
    // Serde round trip as a plain string.
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(json, format!("\"sha256:{HEX}\""));
    assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    assert!(serde_json::from_str::<Digest>("\"md5:abc\"").is_err());
}
