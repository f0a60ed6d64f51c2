//! Sandbox runtime: the confinement holds. Each test runs a real process in
//! the sandbox that tries to break out and checks the kernel refused.

mod sandbox_support;

use sandbox_support::*;
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;
use zlayer_runtime::Runtime;
use zlayer_sandbox::{ALLOW_SYSCALLS_LABEL, CONNECT_PORTS_LABEL, NETWORK_LABEL};

/// The busybox rootfs plus the host's perl (for raw syscalls).
async fn perl_runtime() -> (SandboxRuntime, TestDir) {
    let (rt, tmp) = ready_runtime(false).await;
    let src = tmp.path().join("perl-rootfs");
    std::process::Command::new("cp")
        .arg("-a")
        .arg(tmp.path().join("busybox-rootfs"))
        .arg(&src)
        .status()
        .unwrap();
    std::fs::copy("/usr/bin/perl", src.join("usr/bin/perl"))
        .expect("perl-base is part of every Debian");
    register(&rt, "localhost/perl:test", &src);
    (rt, tmp)
}

fn perl_spec(name: &str, code: &str) -> zlayer_spec::ServiceSpec {
    let mut s = zlayer_spec::ServiceSpec::minimal(name, "localhost/perl:test");
    s.command.entrypoint = Some(vec!["/usr/bin/perl".into(), "-e".into(), code.into()]);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_read_etc_shadow() {
    assert!(
        std::fs::read("/etc/shadow").is_ok(),
        "the test needs a readable /etc/shadow outside"
    );
    let (rt, _tmp) = ready_runtime(false).await;
    let s = spec(
        "shadow",
        &[
            "/bin/sh",
            "-c",
            "head -c 20 /etc/passwd >/dev/null && echo passwd-ok; cat /etc/shadow; echo rc=$?",
        ],
    );
    let (code, logs) = run_to_end(&rt, "shadow", &s).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("passwd-ok"), "{logs}");
    assert!(
        logs.contains("Permission denied") && logs.contains("rc=1"),
        "{logs}"
    );
    assert!(!logs.contains("root:"), "shadow content leaked: {logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_write_outside_writable_set() {
    let (rt, _tmp) = ready_runtime(false).await;
    let outside = std::env::temp_dir().join(format!("zl-escape-{}", std::process::id()));
    let script = format!(
        "echo x > {o}; echo host=$?; echo y > $ZLAYER_ROOTFS/evil; echo rootfs=$?; rm $ZLAYER_ROOTFS/bin/echo; echo rm=$?; \
         echo z > $TMPDIR/ok && cat $TMPDIR/ok && echo tmp-ok",
        o = outside.display()
    );
    let id = cid("write");
    rt.create_from_spec(&id, &spec("write", &["/bin/sh", "-c", &script]))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 0);
    let logs: String = rt
        .get_logs(&id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.clone() + "\n")
        .collect();
    assert!(!outside.exists(), "wrote outside the sandbox: {logs}");
    let root = cdir(&rt, &id).join("rootfs");
    assert!(
        !root.join("evil").exists(),
        "wrote into the read-only rootfs: {logs}"
    );
    assert!(
        root.join("bin/echo").exists(),
        "removed a rootfs file: {logs}"
    );
    assert!(logs.contains("host=1") || logs.contains("host=2"), "{logs}");
    assert!(!logs.contains("rm=0"), "{logs}");
    assert!(
        logs.contains("tmp-ok"),
        "the private tmp must be writable: {logs}"
    );
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_ptrace_a_host_process() {
    let (rt, _tmp) = perl_runtime().await;
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    // PTRACE_ATTACH = 16, SYS_ptrace = 101 on x86_64.
    let code = format!(
        "my $r = syscall(101, 16, {pid}, 0, 0); print \"ptrace=$r errno=\", $!+0, \"\\n\";",
        pid = victim.id()
    );
    let (exit, logs) = run_to_end(&rt, "ptrace", &perl_spec("ptrace", &code)).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", victim.id())).unwrap();
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert_eq!(exit, 0, "{logs}");
    assert!(
        logs.contains("ptrace=-1 errno=1"),
        "ptrace must fail with EPERM: {logs}"
    );
    assert!(status.contains("TracerPid:\t0"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_mount_or_create_namespaces() {
    let (rt, _tmp) = ready_runtime(false).await;
    let s = spec(
        "mount",
        &["/bin/sh", "-c", "mount -t tmpfs none $ZLAYER_ROOTFS/mnt; echo mount=$?; unshare -U true; echo userns=$?; unshare -n true; echo netns=$?"],
    );
    let (code, logs) = run_to_end(&rt, "mount", &s).await;
    assert_eq!(code, 0, "{logs}");
    assert!(!logs.contains("mount=0"), "{logs}");
    assert!(!logs.contains("userns=0"), "{logs}");
    assert!(!logs.contains("netns=0"), "{logs}");
    assert!(logs.contains("Operation not permitted"), "{logs}");
    // The workload's mount target; other tests' own rootfs overlays (which
    // run in parallel) are expected in the table.
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(
        !mounts
            .lines()
            .filter_map(|l| l.split(' ').nth(1))
            .any(|target| target.ends_with("/rootfs/mnt")),
        "a mount appeared on the host: {mounts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_signal_host_processes_and_has_no_privileges() {
    let (rt, _tmp) = ready_runtime(false).await;
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let script = format!(
        "kill -9 {pid}; echo kill=$?; grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; cat /dev/kmsg; echo kmsg=$?",
        pid = victim.id()
    );
    let (code, logs) =
        run_to_end(&rt, "signal", &spec("signal", &["/bin/sh", "-c", &script])).await;
    assert_eq!(code, 0, "{logs}");
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the host process was killed: {logs}"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(logs.contains("kill=1"), "{logs}");
    assert!(logs.contains("CapEff:\t0000000000000000"), "{logs}");
    assert!(logs.contains("CapBnd:\t0000000000000000"), "{logs}");
    assert!(logs.contains("NoNewPrivs:\t1"), "{logs}");
    assert!(logs.contains("Seccomp:\t2"), "{logs}");
    assert!(
        logs.contains("kmsg=1"),
        "an unlisted device was readable: {logs}"
    );
}

fn accept_in_background(l: TcpListener) -> std::thread::JoinHandle<bool> {
    l.set_nonblocking(false).unwrap();
    std::thread::spawn(move || {
        // Wait at most ~10 s for one connection.
        l.set_nonblocking(true).unwrap();
        for _ in 0..200 {
            if l.accept().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_network_limits_ports() {
    let (rt, _tmp) = ready_runtime(false).await;
    let allowed = TcpListener::bind("127.0.0.1:0").unwrap();
    let denied = TcpListener::bind("127.0.0.1:0").unwrap();
    let (ap, dp) = (
        allowed.local_addr().unwrap().port(),
        denied.local_addr().unwrap().port(),
    );
    let got_allowed = accept_in_background(allowed);
    let got_denied = accept_in_background(denied);
    let script = format!(
        "nc -w 2 127.0.0.1 {dp} </dev/null; echo denied=$?; nc -w 2 127.0.0.1 {ap} </dev/null; echo allowed=$?; \
         nc -l -p 1 ; echo lowbind=$?; echo listening; nc -l -p $PORT -e $ZLAYER_ROOTFS/bin/echo served-from-sandbox"
    );
    let mut s = spec_with_endpoint("netlocal", &["/bin/sh", "-c", &script]);
    s.labels.insert(NETWORK_LABEL.into(), "localhost".into());
    s.labels.insert(CONNECT_PORTS_LABEL.into(), ap.to_string());
    let id = cid("netlocal");
    rt.create_from_spec(&id, &s).await.unwrap();
    let port = port_of(&rt, &id).await;
    rt.start_container(&id).await.unwrap();
    // The sandbox serves on its assigned port.
    let mut served = String::new();
    for _ in 0..100 {
        if let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = c.read_to_string(&mut served);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code = tokio::time::timeout(Duration::from_secs(15), rt.wait_container(&id))
        .await
        .unwrap()
        .unwrap();
    let logs: String = rt
        .get_logs(&id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.clone() + "\n")
        .collect();
    assert_eq!(code, 0, "{logs}");
    assert!(
        served.contains("served-from-sandbox"),
        "endpoint unreachable: {served:?} {logs}"
    );
    assert!(
        got_allowed.join().unwrap(),
        "connect to an allowed port failed: {logs}"
    );
    assert!(logs.contains("allowed=0"), "{logs}");
    assert!(!logs.contains("denied=0"), "{logs}");
    assert!(!logs.contains("lowbind=0"), "{logs}");
    drop(got_denied);
    rt.remove_container(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_and_none_network() {
    let (rt, _tmp) = perl_runtime().await;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let got = accept_in_background(l);
    let (code, logs) = run_to_end(
        &rt,
        "netfull",
        &spec(
            "netfull",
            &[
                "/bin/sh",
                "-c",
                &format!("nc -w 2 127.0.0.1 {p} </dev/null; echo full=$?"),
            ],
        ),
    )
    .await;
    assert_eq!(code, 0);
    assert!(logs.contains("full=0") && got.join().unwrap(), "{logs}");

    let mut s = spec(
        "netnone",
        &[
            "/bin/sh",
            "-c",
            &format!("nc -w 2 127.0.0.1 {p} </dev/null; echo none=$?"),
        ],
    );
    s.labels.insert(NETWORK_LABEL.into(), "none".into());
    let (_, logs) = run_to_end(&rt, "netnone", &s).await;
    assert!(!logs.contains("none=0"), "{logs}");

    // UDP is denied in localhost mode, TCP sockets are not.
    let mut s = perl_spec(
        "udp",
        "use Socket; print socket(my $u, PF_INET, SOCK_DGRAM, 0) ? \"udp=ok\\n\" : \"udp=$!\\n\"; print socket(my $t, PF_INET, SOCK_STREAM, 0) ? \"tcp=ok\\n\" : \"tcp=$!\\n\";",
    );
    s.labels.insert(NETWORK_LABEL.into(), "localhost".into());
    let (_, logs) = run_to_end(&rt, "udp", &s).await;
    assert!(
        logs.contains("udp=Operation not permitted") && logs.contains("tcp=ok"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_syscalls_label_lifts_a_deny() {
    // With ptrace allowed by seccomp, Landlock still refuses to trace a
    // process outside the sandbox's domain; PTRACE_TRACEME shows the
    // syscall itself now passes.
    let (rt, _tmp) = perl_runtime().await;
    let mut s = perl_spec(
        "traceme",
        "my $r = syscall(101, 0, 0, 0, 0); print \"traceme=$r\\n\";",
    );
    let (_, denied) = run_to_end(&rt, "traceme", &s).await;
    assert!(denied.contains("traceme=-1"), "{denied}");
    s.labels
        .insert(ALLOW_SYSCALLS_LABEL.into(), "ptrace".into());
    let (_, allowed) = run_to_end(&rt, "traceme", &s).await;
    assert!(allowed.contains("traceme=0"), "{allowed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cannot_change_host_file_metadata() {
    use std::os::unix::fs::PermissionsExt;
    let (rt, tmp) = ready_runtime(false).await;
    // Non-root users must be able to reach the rootfs.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let victim = tmp.path().join("host-file");
    std::fs::write(&victim, "host").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = format!(
        "chmod 777 {v}; echo host=$?; echo x > $TMPDIR/f; chmod 600 $TMPDIR/f; echo tmp=$?; id -u",
        v = victim.display()
    );
    // As uid 0 (capabilities dropped) metadata changes are denied outright.
    let (code, logs) = run_to_end(&rt, "meta", &spec("meta", &["/bin/sh", "-c", &script])).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.contains("host=1") && logs.contains("tmp=1"), "{logs}");
    assert!(logs.contains("Operation not permitted"), "{logs}");
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // As another user, DAC protects the host's files and its own are its own.
    let mut s = spec("meta", &["/bin/sh", "-c", &script]);
    s.user = Some("nobody".into());
    let (code, logs) = run_to_end(&rt, "meta", &s).await;
    assert_eq!(code, 0, "{logs}");
    assert!(
        logs.contains("host=1") && logs.contains("tmp=0") && logs.contains("65534"),
        "{logs}"
    );
    assert_eq!(
        std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
        0o644
    );
}
