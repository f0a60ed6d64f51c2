//! The stock `docker` CLI against the daemon's Docker API (containers run
//! as host processes here; the end-to-end tests with the container runtime
//! live in `zlayer-cli/tests/daemon_e2e.rs`).

mod support;

use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_cli_drives_the_daemon() {
    let d = TestDaemon::start().await;

    let v = ok(&d
        .docker(&[
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.MinAPIVersion}}",
        ])
        .await);
    assert_eq!(v.trim(), "1.45 1.24");
    ok(&d.docker(&["info"]).await);

    // run --rm prints and removes.
    let o = d.docker(&["run", "--rm", "busybox", "echo", "hi"]).await;
    assert_eq!(ok(&o), "hi\n");
    assert_eq!(ok(&d.docker(&["ps", "-aq"]).await), "");

    // Exit codes.
    let o = d
        .docker(&[
            "run",
            "--name",
            "three",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .await;
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert_eq!(out(&o), "out\n");
    assert_eq!(err(&o), "err\n");
    let code = ok(&d
        .docker(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.State.Status}}",
            "three",
        ])
        .await);
    assert_eq!(code.trim(), "3 exited");
    assert_eq!(ok(&d.docker(&["wait", "three"]).await).trim(), "3");
    ok(&d.docker(&["rm", "three"]).await);

    // stdin.
    let o = d
        .docker_in(
            &["run", "-i", "--rm", "busybox", "cat"],
            Some(b"hello\nworld\n"),
        )
        .await;
    assert_eq!(ok(&o), "hello\nworld\n");

    // Detached: ps, logs, exec, stop, rm.
    let id = ok(&d
        .docker(&[
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo started; exec sleep 30",
        ])
        .await);
    assert_eq!(id.trim().len(), 64);
    let ps = ok(&d
        .docker(&["ps", "--format", "{{.Names}} {{.Status}}"])
        .await);
    assert!(ps.starts_with("web Up"), "{ps}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ok(&d.docker(&["logs", "web"]).await), "started\n");
    assert_eq!(
        ok(&d.docker(&["exec", "web", "echo", "inside"]).await),
        "inside\n"
    );
    let o = d.docker(&["exec", "web", "sh", "-c", "exit 5"]).await;
    assert_eq!(o.status.code(), Some(5));
    let o = d
        .docker_in(&["exec", "-i", "web", "cat"], Some(b"piped\n"))
        .await;
    assert_eq!(ok(&o), "piped\n");
    let top = ok(&d.docker(&["top", "web"]).await);
    assert!(top.contains("sleep 30"), "{top}");
    let stats = ok(&d
        .docker(&[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.PIDs}}",
            "web",
        ])
        .await);
    assert_eq!(stats.trim(), "web 1");
    let o = d.docker(&["rm", "web"]).await;
    assert!(
        !o.status.success() && err(&o).contains("cannot remove a running container"),
        "{}",
        err(&o)
    );
    ok(&d.docker(&["stop", "-t", "1", "web"]).await);
    let st = ok(&d
        .docker(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web",
        ])
        .await);
    // PID 1 of a container has no default TERM action: `sleep` ignores
    // TERM and is killed when the grace period ends, as under docker.
    assert_eq!(st.trim(), "exited 137");
    ok(&d.docker(&["rm", "web"]).await);

    // logs -f follows until the container ends.
    ok(&d
        .docker(&[
            "run",
            "-d",
            "--name",
            "tick",
            "busybox",
            "sh",
            "-c",
            "for i in 1 2 3; do echo $i; sleep 0.2; done",
        ])
        .await);
    let o = d.docker(&["logs", "-f", "tick"]).await;
    assert_eq!(ok(&o), "1\n2\n3\n");
    let o = d.docker(&["logs", "--tail", "1", "-t", "tick"]).await;
    assert!(ok(&o).trim_end().ends_with("Z 3"), "{}", out(&o));
    ok(&d.docker(&["rm", "-f", "tick"]).await);

    // Images.
    let images = ok(&d
        .docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .await);
    assert!(images.lines().any(|l| l == "busybox:latest"), "{images}");
    let o = d.docker(&["run", "--rm", "nosuchimage"]).await;
    assert!(!o.status.success());
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_have_docker_shapes_and_statuses() {
    let d = TestDaemon::start().await;
    let s = &d.docker_sock;
    let (st, body) = http(s, "GET", "/v1.45/containers/nope/json", None).await;
    assert_eq!(
        (st, body.trim()),
        (404, r#"{"message":"No such container: nope"}"#)
    );
    let (st, body) = http(s, "POST", "/v1.45/containers/create", Some("{bad json")).await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("malformed JSON body"), "{body}");
    let (st, body) = http(
        s,
        "POST",
        "/v1.45/containers/create",
        Some(r#"{"Image": "nope:1"}"#),
    )
    .await;
    assert_eq!(
        (st, body.trim()),
        (404, r#"{"message":"No such image: nope:1"}"#)
    );
    let (st, _) = http(s, "GET", "/v9.99/_ping", None).await;
    assert_eq!(st, 400);
    let (st, body) = http(s, "GET", "/v1.10/_ping", None).await;
    assert!(st == 400 && body.contains("too old"), "{body}");
    let (st, body) = http(s, "GET", "/_ping", None).await;
    assert_eq!((st, body.as_str()), (200, "OK"));
    let (st, _) = http(s, "GET", "/v1.45/nope", None).await;
    assert_eq!(st, 404);
    let create = r#"{"Image": "busybox", "Cmd": ["sleep", "30"], "Unknown": {"a": [1]}}"#;
    let (st, body) = http(s, "POST", "/containers/create?name=dup", Some(create)).await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = http(s, "POST", "/containers/create?name=dup", Some(create)).await;
    assert_eq!(st, 409, "{body}");
    assert!(body.contains("already in use"));
    let (st, _) = http(s, "POST", "/containers/dup/start", None).await;
    assert_eq!(st, 204);
    let (st, _) = http(s, "POST", "/containers/dup/start", None).await;
    assert_eq!(st, 304);
    let (st, body) = http(s, "POST", "/containers/dup/wait?condition=sometimes", None).await;
    assert_eq!(st, 400, "{body}");
    let (st, _) = http(s, "POST", "/containers/dup/kill?signal=NOPE", None).await;
    assert_eq!(st, 400);
    let (st, body) = http(s, "DELETE", "/containers/dup", None).await;
    assert_eq!(st, 409, "{body}");
    let (st, _) = http(s, "DELETE", "/containers/dup?force=1", None).await;
    assert_eq!(st, 204);
    let (st, _) = http(s, "GET", "/images/nope/json", None).await;
    assert_eq!(st, 404);
    let (st, body) = http(s, "GET", "/images/busybox/json", None).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("\"RepoTags\":[\"busybox:latest\"]"), "{body}");
    // The zlayer socket serves the same router.
    let (st, _) = http(&d.sock, "GET", "/v1.45/containers/json?all=1", None).await;
    assert_eq!(st, 200);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_and_rmi() {
    let d = TestDaemon::start().await;
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("bb.tar");
    zlayer_image::fixtures::busybox_docker_archive(
        &tar,
        &zlayer_image::fixtures::FixtureOptions {
            reference: Some("loaded/busybox:v1".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let o = d.docker(&["load", "-i", tar.to_str().unwrap()]).await;
    assert!(
        ok(&o).contains("Loaded image: loaded/busybox:v1"),
        "{}",
        out(&o)
    );
    let o = d
        .docker(&["run", "--rm", "loaded/busybox:v1", "echo", "ok"])
        .await;
    assert_eq!(ok(&o), "ok\n");
    let o = d.docker(&["rmi", "loaded/busybox:v1"]).await;
    assert!(
        ok(&o).contains("Untagged: loaded/busybox:v1"),
        "{}",
        out(&o)
    );
    let o = d.docker(&["image", "inspect", "loaded/busybox:v1"]).await;
    assert!(!o.status.success());
    d.stop().await;
}

async fn eventually_docker(d: &TestDaemon, args: &[&str], want: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        last = out(&d.docker(args).await).trim().to_string();
        if last == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_policies_and_health_checks() {
    let d = TestDaemon::start().await;
    // on-failure:2 restarts twice (growing delay: 100 ms, 200 ms), then gives up.
    ok(&d
        .docker(&[
            "run",
            "-d",
            "--name",
            "flaky",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "exit 1",
        ])
        .await);
    let fmt = [
        "inspect",
        "-f",
        "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}",
        "flaky",
    ];
    assert_eq!(
        eventually_docker(&d, &fmt, "2 exited 1").await,
        "2 exited 1"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        out(&d.docker(&fmt).await).trim(),
        "2 exited 1",
        "no third restart"
    );

    // always: restarted after it exits on its own, not after a user stop.
    ok(&d
        .docker(&[
            "run",
            "-d",
            "--name",
            "always",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.2",
        ])
        .await);
    let fmt = ["inspect", "-f", "{{.RestartCount}}", "always"];
    let n = eventually_docker(&d, &fmt, "2").await;
    assert_eq!(n, "2");
    ok(&d.docker(&["stop", "-t", "1", "always"]).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let st = out(&d
        .docker(&["inspect", "-f", "{{.State.Status}}", "always"])
        .await);
    assert_eq!(st.trim(), "exited", "a user stop is not undone");
    // A user start clears the stop mark.
    ok(&d.docker(&["start", "always"]).await);
    let fmt = ["inspect", "-f", "{{.State.Status}}", "always"];
    assert_eq!(eventually_docker(&d, &fmt, "running").await, "running");
    ok(&d.docker(&["rm", "-f", "always", "flaky"]).await);

    // Health: a command check, seen by docker ps/inspect.
    let shared = d.root.path().join("health");
    std::fs::create_dir_all(&shared).unwrap();
    let marker = shared.join("healthy-marker");
    let bind = format!("{}:/health", shared.display());
    let test = "test -f /health/healthy-marker".to_string();
    ok(&d
        .docker(&[
            "run",
            "-d",
            "--name",
            "svc",
            "-v",
            &bind,
            "--health-cmd",
            &test,
            "--health-interval",
            "100ms",
            "--health-retries",
            "2",
            "busybox",
            "sleep",
            "30",
        ])
        .await);
    let fmt = ["inspect", "-f", "{{.State.Health.Status}}", "svc"];
    assert_eq!(eventually_docker(&d, &fmt, "unhealthy").await, "unhealthy");
    std::fs::write(&marker, b"").unwrap();
    assert_eq!(eventually_docker(&d, &fmt, "healthy").await, "healthy");
    let ps = out(&d.docker(&["ps", "--format", "{{.Status}}"]).await);
    assert!(ps.contains("(healthy)"), "{ps}");
    ok(&d.docker(&["rm", "-f", "svc"]).await);
    d.stop().await;
}
