//! The default confinement of a container: seccomp (docker's profile),
//! no_new_privs, docker's capability set, masked and read-only paths.

mod container_support;

use container_support::*;
use zlayer_runtime::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_confinement() {
    let env = TestEnv::new();
    let id = unique_id("sec");
    let script = "grep -E '^(Seccomp|NoNewPrivs|CapBnd|CapEff):' /proc/self/status | tr -s '\\t ' ' '; \
                  mount -t tmpfs none /mnt 2>/dev/null && echo mounted || echo mount-denied; \
                  unshare -n true 2>/dev/null && echo unshared || echo unshare-denied; \
                  echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo wrote-proc || echo proc-ro; \
                  head -c 1 /proc/kcore 2>/dev/null | wc -c";
    env.rt
        .create_from_spec(&id, &sh("sec", script))
        .await
        .unwrap();
    env.rt.start_container(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
    let lines = stdout_lines(&env.rt, &id).await;
    assert_eq!(
        lines,
        vec![
            "CapEff: 00000000a80425fb",
            "CapBnd: 00000000a80425fb",
            "NoNewPrivs: 1",
            "Seccomp: 2",
            "mount-denied",
            "unshare-denied",
            "proc-ro",
            "0",
        ],
        "{lines:?}"
    );
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}
