//! Containers on a pseudo-terminal (label `com.zlayer.tty: "true"`, what
//! `docker run -t` / `zlayer run -t` ask for): output is logged chunk by
//! chunk (a prompt shows up without its newline), stdin goes to the
//! terminal, resize_terminal changes its size, close_stdin sends ^D.

mod container_support;

use container_support::*;
use std::time::Duration;
use zlayer_runtime::*;

fn joined(lines: &[String]) -> String {
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_mode() {
    let env = TestEnv::new();
    let id = unique_id("tty");
    let mut spec = sh(
        "tty",
        "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; stty size; printf 'prompt> '; read line; echo got:$line; read again; stty size; cat; echo after-eof",
    );
    spec.labels.insert("com.zlayer.tty".into(), "true".into());
    env.rt.create_from_spec(&id, &spec).await.unwrap();
    env.rt.start_container(&id).await.unwrap();
    // The prompt (no newline) is logged before anyone types.
    let mut seen = String::new();
    for _ in 0..250 {
        seen = joined(&stdout_lines(&env.rt, &id).await);
        if seen.contains("prompt> ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.contains("prompt> "), "{seen:?}");
    assert!(
        seen.contains("is-a-tty") && seen.contains("24 80"),
        "{seen:?}"
    );
    env.rt.write_stdin(&id, b"hello\n").await.unwrap();
    env.rt.resize_terminal(&id, 40, 120).await.unwrap();
    env.rt.write_stdin(&id, b"next\n").await.unwrap();
    env.rt.write_stdin(&id, b"typed\n").await.unwrap();
    // ^D ends `cat`; the terminal itself stays.
    env.rt.close_stdin(&id).await.unwrap();
    assert_eq!(env.rt.wait_container(&id).await.unwrap(), 0);
    let all = joined(&stdout_lines(&env.rt, &id).await);
    assert!(all.contains("got:hello"), "{all:?}");
    assert!(all.contains("after-eof"), "{all:?}");
    assert!(
        all.contains("40 120"),
        "the resize reached the terminal: {all:?}"
    );
    // Output is kept raw: the terminal's CR LF line ends are in the records.
    let raw = stdout_lines(&env.rt, &id).await.concat();
    assert!(raw.contains("got:hello\r\n"), "{raw:?}");
    env.rt.remove_container(&id).await.unwrap();
    assert_nothing_left(&env, &id);
}
