//! Sandbox runtime: the policy file reflects the spec (GPU, network,
//! volumes, structure) and the volumes it grants work at run time.

mod sandbox_support;

use sandbox_support::*;
use zlayer_runtime::{Runtime, RuntimeError};
use zlayer_sandbox::{DEGRADED_LABEL, NETWORK_LABEL, READ_PATHS_LABEL};
use zlayer_spec::{GpuSpec, StorageSpec};

fn gpu_spec(name: &str) -> zlayer_spec::ServiceSpec {
    let mut s = spec_with_endpoint(name, &["/bin/echo", "gpu access configured"]);
    s.resources.gpu = Some(GpuSpec {
        vendor: "nvidia".into(),
        count: 1,
    });
    s
}

fn gpu_section(policy: &str) -> String {
    policy
        .lines()
        .skip_while(|l| !l.starts_with("[devices]"))
        .take_while(|l| !l.starts_with("[network]"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_allowed_only_when_runtime_and_spec_agree() {
    for (runtime_gpu, spec_gpu, allowed) in [
        (true, true, true),
        (false, true, false),
        (true, false, false),
        (false, false, false),
    ] {
        let (rt, _tmp) = ready_runtime(runtime_gpu).await;
        let id = cid("gpu");
        let s = if spec_gpu {
            gpu_spec("gpu")
        } else {
            spec_with_endpoint("gpu", &["/bin/true"])
        };
        rt.create_from_spec(&id, &s).await.unwrap();
        let devices = gpu_section(&policy(&rt, &id));
        assert_eq!(
            devices.contains("gpu             allowed"),
            allowed,
            "{runtime_gpu}/{spec_gpu}:\n{devices}"
        );
        assert_eq!(devices.contains("/dev/nvidiactl"), allowed, "{devices}");
        assert_eq!(devices.contains("/dev/dri"), allowed, "{devices}");
        if !allowed {
            assert!(devices.contains("gpu             denied"), "{devices}");
            assert!(!devices.contains("/dev/nvidia"), "{devices}");
        }
        if runtime_gpu != spec_gpu && spec_gpu {
            assert!(devices.contains("gpu_access is off"), "{devices}");
        }
        rt.remove_container(&id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_modes_in_the_policy() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("net");
    let mut s = spec_with_endpoint("net", &["/bin/true"]);
    s.labels.insert(NETWORK_LABEL.into(), "localhost".into());
    rt.create_from_spec(&id, &s).await.unwrap();
    let port = port_of(&rt, &id).await;
    let p = policy(&rt, &id);
    assert!(p.contains("mode            localhost"), "{p}");
    assert!(p.contains(&format!("network-bind    tcp/{port}")), "{p}");
    assert!(p.contains(&format!("connect         tcp/{port}")), "{p}");
    assert!(p.contains("UDP and raw"), "{p}");
    assert!(!p.contains("full access"), "{p}");

    rt.remove_container(&id).await.unwrap();
    rt.create_from_spec(&id, &spec("net", &["/bin/true"]))
        .await
        .unwrap();
    let p = policy(&rt, &id);
    assert!(
        p.contains("full access")
            && p.contains("network-outbound")
            && p.contains("network-inbound"),
        "{p}"
    );

    rt.remove_container(&id).await.unwrap();
    let mut s = spec("net", &["/bin/true"]);
    s.network_mode = zlayer_spec::NetworkMode::None;
    rt.create_from_spec(&id, &s).await.unwrap();
    assert!(policy(&rt, &id).contains("mode            none"));

    rt.remove_container(&id).await.unwrap();
    let mut s = spec("net", &["/bin/true"]);
    s.labels.insert(NETWORK_LABEL.into(), "internet".into());
    let err = rt.create_from_spec(&id, &s).await.unwrap_err();
    assert!(
        matches!(&err, RuntimeError::InvalidSpec(m) if m.contains("full, localhost or none")),
        "{err}"
    );
    assert!(!cdir(&rt, &id).exists(), "a failed create leaves nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_writable_and_tmp_always() {
    let (rt, tmp) = ready_runtime(false).await;
    let ro = tmp.path().join("ro-src");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("config"), "from host").unwrap();
    let mut s = spec(
        "vol",
        &["/bin/sh", "-c", "cd $ZLAYER_ROOTFS; echo kept > data/file && echo data-ok; cat etc/app/config; echo x > etc/app/new; echo ro=$?"],
    );
    s.storage = vec![
        StorageSpec::Named {
            name: "data".into(),
            target: "/data".into(),
            readonly: false,
        },
        StorageSpec::Bind {
            source: ro.display().to_string(),
            target: "/etc/app".into(),
            readonly: true,
        },
    ];
    let id = cid("vol");
    rt.create_from_spec(&id, &s).await.unwrap();
    let p = policy(&rt, &id);
    let write = p
        .split("[write]")
        .nth(1)
        .unwrap()
        .split("[volumes]")
        .next()
        .unwrap()
        .to_string();
    assert!(write.contains("/data"), "{p}");
    assert!(write.contains("tmp"), "{p}");
    assert!(
        !write.contains("ro-src"),
        "a read-only volume must not be writable: {p}"
    );
    assert!(p.contains("/etc/app") && p.contains("read-only"), "{p}");
    rt.start_container(&id).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 0);
    let logs: String = rt
        .get_logs(&id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.message.clone() + "\n")
        .collect();
    assert!(
        logs.contains("data-ok") && logs.contains("from host"),
        "{logs}"
    );
    assert!(!logs.contains("ro=0") && !ro.join("new").exists(), "{logs}");
    rt.remove_container(&id).await.unwrap();
    // A named volume outlives its container.
    let vol = rt.volumes().path("data").unwrap().join("file");
    assert_eq!(std::fs::read_to_string(vol).unwrap(), "kept\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_structure() {
    let (rt, _tmp) = ready_runtime(false).await;
    let id = cid("structure");
    let mut s = spec_with_endpoint("structure", &["/bin/echo", "hi"]);
    s.resources.memory = Some(zlayer_spec::ByteSize::parse("64Mi").unwrap());
    s.labels
        .insert(READ_PATHS_LABEL.into(), "/usr/share/doc".into());
    s.labels.insert(DEGRADED_LABEL.into(), "true".into());
    rt.create_from_spec(&id, &s).await.unwrap();
    let p = policy(&rt, &id);
    let root = cdir(&rt, &id).join("rootfs");
    for needle in [
        "version 1",
        "default deny",
        "process-exec",
        "process-fork",
        "/usr/lib",
        "system libraries",
        "/dev/null",
        "pty",
        "/dev/ptmx",
        "/proc",
        "rootfs",
        &root.display().to_string(),
        "67108864 bytes",
        "deny            ptrace",
        "mount",
        "CLONE_NEW",
        "capabilities    all dropped",
        "no_new_privs",
        "/usr/share/doc",
        "degraded mode allowed",
    ] {
        assert!(p.contains(needle), "policy lacks {needle:?}:\n{p}");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cdir(&rt, &id).join("launch.json")).unwrap())
            .unwrap();
    assert_eq!(config["policy"]["memory_limit"], 67108864);
    assert_eq!(config["argv"][0], "/bin/echo");
    rt.remove_container(&id).await.unwrap();
}
