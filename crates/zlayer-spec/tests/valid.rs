//! Valid specs: the full example, the minimal one, defaults and round trips.

mod common;

use std::time::Duration;

use zlayer_spec::*;

fn shop() -> DeploymentSpec {
    parse_deployment_file(&common::examples_dir().join("shop.yaml"))
        .unwrap_or_else(|e| panic!("examples/shop.yaml must be valid:\n{e}"))
}

#[test]
fn full_example_parses_every_field() {
    let spec = shop();
    assert_eq!(spec.version, "v1");
    assert_eq!(spec.deployment, "shop");
    let names: Vec<&str> = spec.services.keys().map(String::as_str).collect();
    assert_eq!(names, ["web", "db"], "file order is kept");

    let web = &spec.services["web"];
    assert_eq!(web.name, "web");
    assert_eq!(web.rtype, ResourceType::Service);
    assert_eq!(web.image.name, "localhost:5000/web:1.2");
    assert_eq!(web.image.pull_policy, PullPolicy::IfNotPresent);
    assert_eq!(
        web.command.entrypoint.as_deref(),
        Some(&["/bin/httpd".to_string()][..])
    );
    assert_eq!(
        web.command.args.clone().unwrap_or_default(),
        ["-f", "-p", "8080"]
    );
    assert_eq!(web.command.workdir.as_deref(), Some("/www"));
    assert_eq!(web.env.get("MODE").map(String::as_str), Some("prod"));
    assert_eq!(web.isolation_label(), Some("container"));
    assert_eq!(web.isolation().unwrap(), Some(Isolation::Container));
    assert_eq!(web.network_mode, NetworkMode::Bridge);
    assert_eq!(
        web.endpoints,
        [EndpointSpec {
            name: "http".into(),
            protocol: Protocol::Tcp,
            port: 8080,
            expose: Expose::Internal,
        }]
    );
    assert_eq!(
        web.port_mappings,
        [PortMapping {
            host_port: Some(18080),
            container_port: 8080,
            protocol: Protocol::Tcp,
            host_ip: Some("127.0.0.1".into()),
        }]
    );
    assert_eq!(web.resources.cpu, Some(0.5));
    assert_eq!(
        web.resources.memory.as_ref().unwrap().bytes().unwrap(),
        256 << 20
    );
    assert_eq!(web.resources.pids_limit, Some(100));
    assert_eq!(
        web.resources.gpu,
        Some(GpuSpec {
            vendor: "nvidia".into(),
            count: 1
        })
    );
    assert_eq!(web.storage.len(), 4);
    assert_eq!(
        web.storage[0],
        StorageSpec::Bind {
            source: "/srv/www".into(),
            target: "/www".into(),
            readonly: true
        }
    );
    assert_eq!(
        web.storage[1],
        StorageSpec::Named {
            name: "data".into(),
            target: "/data".into(),
            readonly: false
        }
    );
    assert_eq!(
        web.storage[2],
        StorageSpec::Anonymous {
            target: "/cache".into()
        }
    );
    match &web.storage[3] {
        StorageSpec::Tmpfs { target, size } => {
            assert_eq!(target, "/tmp");
            assert_eq!(size.as_ref().unwrap().bytes().unwrap(), 64 << 20);
        }
        other => panic!("expected tmpfs, got {other:?}"),
    }
    assert_eq!(web.scale, ScaleSpec::Fixed { replicas: 2 });
    assert_eq!(web.replicas(), 2);
    let health = web.health.as_ref().unwrap();
    assert_eq!(
        health.start_grace.as_ref().unwrap().duration().unwrap(),
        Duration::from_secs(5)
    );
    assert_eq!(
        health.interval.as_ref().unwrap().duration().unwrap(),
        Duration::from_secs(10)
    );
    assert_eq!(
        health.timeout.as_ref().unwrap().duration().unwrap(),
        Duration::from_secs(2)
    );
    assert_eq!(health.retries, 3);
    assert_eq!(health.check, HealthCheck::Tcp { port: 8080 });
    assert_eq!(web.depends.len(), 1);
    assert_eq!(web.depends[0].service, "db");
    assert_eq!(web.depends[0].condition, DependsCondition::Healthy);
    assert_eq!(
        web.depends[0].timeout.as_ref().unwrap().duration().unwrap(),
        Duration::from_secs(300)
    );
    assert_eq!(web.depends[0].on_timeout, OnTimeout::Fail);
    assert_eq!(web.restart_policy.kind, RestartKind::OnFailure);
    assert_eq!(web.restart_policy.max_attempts, Some(5));
    assert_eq!(
        web.restart_policy
            .delay
            .as_ref()
            .unwrap()
            .duration()
            .unwrap(),
        Duration::from_secs(1)
    );
    assert!(!web.lifecycle.delete_on_exit);
    assert_eq!(web.stop_signal.as_deref(), Some("SIGTERM"));
    assert_eq!(
        web.stop_grace_period.as_ref().unwrap().duration().unwrap(),
        Duration::from_secs(10)
    );
    assert_eq!(web.user.as_deref(), Some("1000:1000"));

    let db = &spec.services["db"];
    assert_eq!(
        db.health.as_ref().unwrap().check,
        HealthCheck::Command {
            command: vec!["pg_isready".into(), "-q".into()]
        }
    );
    assert_eq!(db.restart_policy.kind, RestartKind::Always);
}

#[test]
fn full_example_round_trips() {
    let spec = shop();
    let yaml = serde_norway::to_string(&spec).unwrap();
    let again = parse_deployment(&yaml).unwrap_or_else(|e| panic!("re-parse failed:\n{e}\n{yaml}"));
    assert_eq!(spec, again);
    // JSON (used by runtimes to store a service's config) round-trips too.
    let web = &spec.services["web"];
    let json = serde_json::to_string(web).unwrap();
    let mut back: ServiceSpec = serde_json::from_str(&json).unwrap();
    back.name = web.name.clone();
    assert_eq!(&back, web);
}

#[test]
fn minimal_spec_gets_defaults() {
    let spec = parse_deployment(
        "version: v1\ndeployment: tiny\nservices:\n  app:\n    image: { name: alpine:3.19 }\n",
    )
    .unwrap();
    let app = &spec.services["app"];
    assert_eq!(app, &ServiceSpec::minimal("app", "alpine:3.19"));
    assert_eq!(app.rtype, ResourceType::Service);
    assert_eq!(app.image.pull_policy, PullPolicy::IfNotPresent);
    assert_eq!(app.network_mode, NetworkMode::Bridge);
    assert_eq!(app.scale, ScaleSpec::Fixed { replicas: 1 });
    assert_eq!(app.replicas(), 1);
    assert_eq!(app.restart_policy.kind, RestartKind::No);
    assert_eq!(app.isolation_label(), None);
    assert_eq!(app.isolation().unwrap(), None);
    assert!(app.health.is_none() && app.depends.is_empty() && app.storage.is_empty());
    assert!(spec.validate().is_ok());
    let yaml = serde_norway::to_string(&spec).unwrap();
    assert_eq!(parse_deployment(&yaml).unwrap(), spec);
}

#[test]
fn minimal_service_round_trips_through_a_deployment() {
    let mut spec = parse_deployment(
        "version: v1\ndeployment: tiny\nservices:\n  app:\n    image: { name: alpine:3.19 }\n",
    )
    .unwrap();
    let mut job = ServiceSpec::minimal("job", "busybox:1.36");
    job.rtype = ResourceType::Job;
    job.scale = ScaleSpec::Manual;
    job.network_mode = NetworkMode::BridgeNamed("backend".into());
    job.resources.memory = Some(ByteSize::from_bytes(512 << 20));
    job.stop_grace_period = Some(DurationSpec::from_duration(Duration::from_millis(1500)));
    job.health = Some(HealthSpec {
        start_grace: None,
        interval: Some(DurationSpec::parse("1h30m").unwrap()),
        timeout: None,
        retries: 1,
        check: HealthCheck::Http {
            url: "http://localhost:8080/health".into(),
            expect_status: Some(204),
        },
    });
    spec.services.insert("job".into(), job);
    spec.validate().unwrap();
    let yaml = serde_norway::to_string(&spec).unwrap();
    assert!(yaml.contains("network_mode: bridge:backend"), "{yaml}");
    assert!(yaml.contains("memory: 512Mi"), "{yaml}");
    assert_eq!(parse_deployment(&yaml).unwrap(), spec);
    assert_eq!(spec.services["job"].replicas(), 1);
}

#[test]
fn scalars_are_accepted_where_text_is_meant() {
    let spec = parse_deployment(&common::one_service(
        "env: { PORT: 8080, DEBUG: true }\ncommand: { args: [-p, 8080] }\nuser: 1000\nstop_signal: 15\n\
         health: { check: { type: command, command: \"pg_isready -q\" } }\nscale: { mode: manual }",
    ))
    .unwrap();
    let web = &spec.services["web"];
    assert_eq!(web.env["PORT"], "8080");
    assert_eq!(web.env["DEBUG"], "true");
    assert_eq!(web.command.args.clone().unwrap(), ["-p", "8080"]);
    assert_eq!(web.user.as_deref(), Some("1000"));
    assert_eq!(web.stop_signal.as_deref(), Some("15"));
    assert_eq!(
        web.health.as_ref().unwrap().check,
        HealthCheck::Command {
            command: vec!["/bin/sh".into(), "-c".into(), "pg_isready -q".into()]
        }
    );
    assert_eq!(web.scale, ScaleSpec::Manual);
}

#[test]
fn sizes_in_a_spec() {
    for (text, bytes) in [
        ("1024", 1024u64),
        ("\"2048\"", 2048),
        ("4Ki", 4 << 10),
        ("256Mi", 256 << 20),
        ("2Gi", 2 << 30),
        ("1Ti", 1 << 40),
        ("8K", 8_000),
        ("5M", 5_000_000),
        ("3G", 3_000_000_000),
        ("1T", 1_000_000_000_000),
        ("1.5Gi", 3 << 29),
    ] {
        let spec = parse_deployment(&common::one_service(&format!(
            "resources: {{ memory: {text} }}"
        )))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
        let mem = spec.services["web"].resources.memory.clone().unwrap();
        assert_eq!(mem.bytes().unwrap(), bytes, "{text}");
    }
}

#[test]
fn durations_in_a_spec() {
    for (text, want) in [
        ("500ms", Duration::from_millis(500)),
        ("10s", Duration::from_secs(10)),
        ("5m", Duration::from_secs(300)),
        ("1h", Duration::from_secs(3600)),
        ("1h30m", Duration::from_secs(5400)),
        ("0", Duration::ZERO),
    ] {
        let spec = parse_deployment(&common::one_service(&format!("stop_grace_period: {text}")))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let d = spec.services["web"].stop_grace_period.clone().unwrap();
        assert_eq!(d.duration().unwrap(), want, "{text}");
    }
}

#[test]
fn enums_parse_and_print() {
    assert_eq!("newer".parse::<PullPolicy>().unwrap(), PullPolicy::Newer);
    assert_eq!(PullPolicy::IfNotPresent.to_string(), "if_not_present");
    let err = "sometimes".parse::<PullPolicy>().unwrap_err().to_string();
    assert!(
        err.contains("always, if_not_present, never, newer"),
        "{err}"
    );
    assert_eq!("vm".parse::<Isolation>().unwrap(), Isolation::Vm);
    assert_eq!(Isolation::Sandbox.to_string(), "sandbox");
    assert!("jail".parse::<Isolation>().is_err());
    assert_eq!(
        "bridge:back-end".parse::<NetworkMode>().unwrap(),
        NetworkMode::BridgeNamed("back-end".into())
    );
    assert_eq!(NetworkMode::BridgeNamed("x".into()).to_string(), "bridge:x");
    assert!("bridge:".parse::<NetworkMode>().is_err());
    assert!("overlay".parse::<NetworkMode>().is_err());
    assert_eq!(ISOLATION_LABEL, "com.zlayer.isolation");
    assert_eq!(RUNTIME_ANNOTATION, "com.zlayer.runtime");
    assert_eq!(parse_signal("SIGTERM"), Some(15));
    assert_eq!(parse_signal("kill"), Some(9));
}

#[test]
fn yaml_1_1_words_stay_words() {
    // `no` is a plain word in YAML 1.2, so `kind: no` needs no quotes.
    let spec = parse_deployment(&common::one_service("restart_policy: { kind: no }")).unwrap();
    assert_eq!(spec.services["web"].restart_policy.kind, RestartKind::No);
}
