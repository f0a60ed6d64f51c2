//! Invalid specs: each mistake is reported with its path, line and a fix.

mod common;

use common::{assert_single, errors, one_service, problem_at};
use zlayer_spec::{parse_deployment, parse_deployment_file};

// In `one_service` specs the service body starts on line 6.

#[test]
fn unknown_fields_are_all_reported() {
    let yaml = one_service("imagee: x\nresources:\n  memroy: 1Gi\n  cpus: 2\nfoo: 1");
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 4, "{errs}");
    let p = problem_at(&errs, "services.web.imagee");
    assert_eq!(p.line, Some(6));
    assert!(
        p.message
            .contains("unknown field \"imagee\"; did you mean \"image\"?"),
        "{p}"
    );
    let p = problem_at(&errs, "services.web.resources.memroy");
    assert_eq!(p.line, Some(8));
    assert!(p.message.contains("did you mean \"memory\"?"), "{p}");
    assert_eq!(
        problem_at(&errs, "services.web.resources.cpus").line,
        Some(9)
    );
    let p = problem_at(&errs, "services.web.foo");
    assert_eq!(p.line, Some(10));
    assert!(p.message.contains("use one of: rtype, image"), "{p}");
}

#[test]
fn unknown_fields_inside_tagged_entries() {
    let yaml = one_service(
        "storage:\n  - { type: anonymous, target: /a, readonly: true }\nhealth:\n  check: { type: tcp, port: 80, url: x }",
    );
    let errs = errors(&yaml);
    assert_eq!(errs.len(), 2, "{errs}");
    assert_eq!(
        problem_at(&errs, "services.web.storage[0].readonly").line,
        Some(7)
    );
    assert_eq!(
        problem_at(&errs, "services.web.health.check.url").line,
        Some(9)
    );
}

#[test]
fn bad_size() {
    assert_single(
        &one_service("resources:\n  memory: 12Qi"),
        "services.web.resources.memory",
        7,
        "\"12Qi\" is not a size; use e.g. 512Mi or 2Gi",
    );
    assert_single(
        &one_service("storage:\n  - { type: tmpfs, target: /t, size: lots }"),
        "services.web.storage[0].size",
        7,
        "\"lots\" is not a size",
    );
}

#[test]
fn display_format_is_line_path_message() {
    let errs = errors(&one_service("resources:\n  memory: 12Qi"));
    assert_eq!(
        errs.to_string(),
        "line 7: services.web.resources.memory: \"12Qi\" is not a size; use e.g. 512Mi or 2Gi \
         (units: Ki, Mi, Gi, Ti, K, M, G, T, or plain bytes)"
    );
}

#[test]
fn bad_durations() {
    let errs = errors(&one_service(
        "health:\n  interval: 10x\n  timeout: 0s\n  check: { type: tcp, port: 80 }\nstop_grace_period: 10",
    ));
    assert_eq!(errs.len(), 3, "{errs}");
    let p = problem_at(&errs, "services.web.health.interval");
    assert_eq!(p.line, Some(7));
    assert!(
        p.message
            .contains("\"10x\" is not a duration; use e.g. 500ms"),
        "{p}"
    );
    assert_eq!(
        problem_at(&errs, "services.web.health.timeout").line,
        Some(8)
    );
    assert_eq!(
        problem_at(&errs, "services.web.stop_grace_period").line,
        Some(10)
    );
}

#[test]
fn bad_ports() {
    let errs = errors(&one_service(
        "endpoints:\n  - { name: http, port: 0 }\n  - { name: big, port: 70000 }\n\
         port_mappings:\n  - { host_port: 0, container_port: 0 }\n  - { host_port: 65536, container_port: 80 }\n\
         health: { check: { type: tcp, port: 0 } }",
    ));
    assert_eq!(errs.len(), 5, "{errs}");
    let p = problem_at(&errs, "services.web.endpoints[0].port");
    assert_eq!(p.line, Some(7));
    assert!(
        p.message.contains("0 is not a port number; use 1-65535"),
        "{p}"
    );
    let p = problem_at(&errs, "services.web.endpoints[1].port");
    assert_eq!(p.line, Some(8));
    assert!(p.message.contains("70000 is not a port number"), "{p}");
    // host_port 0 means "pick a free port" and is allowed.
    assert_eq!(
        problem_at(&errs, "services.web.port_mappings[0].container_port").line,
        Some(10)
    );
    let p = problem_at(&errs, "services.web.port_mappings[1].host_port");
    assert_eq!(p.line, Some(11));
    assert!(p.message.contains("65536 is not a port number"), "{p}");
    assert_eq!(
        problem_at(&errs, "services.web.health.check.port").line,
        Some(12)
    );
}

#[test]
fn duplicate_host_ports_across_services() {
    let yaml = "version: v1\ndeployment: shop\nservices:\n  a:\n    image: { name: a }\n    port_mappings:\n      - { host_port: 8080, container_port: 80 }\n  b:\n    image: { name: b }\n    port_mappings:\n      - { host_port: 8080, container_port: 81, host_ip: 127.0.0.1 }\n      - { host_port: 8080, container_port: 82, protocol: udp }\n      - { host_port: 9090, container_port: 83, host_ip: 127.0.0.1 }\n      - { host_port: 9090, container_port: 84, host_ip: 127.0.0.2 }\n";
    let errs = errors(yaml);
    // 8080/tcp on all addresses clashes with 127.0.0.1:8080/tcp; udp and
    // distinct addresses do not clash.
    assert_eq!(errs.len(), 1, "{errs}");
    let p = problem_at(&errs, "services.b.port_mappings[0].host_port");
    assert_eq!(p.line, Some(11));
    assert!(
        p.message
            .contains("host port 8080/tcp is already mapped by services.a.port_mappings[0]"),
        "{p}"
    );
}

#[test]
fn dependency_cycle_is_reported() {
    let yaml = "version: v1\ndeployment: shop\nservices:\n  a:\n    image: { name: a }\n    depends: [ { service: b } ]\n  b:\n    image: { name: b }\n    depends:\n      - service: a\n";
    let errs = errors(yaml);
    assert_eq!(errs.len(), 1, "{errs}");
    let p = problem_at(&errs, "services.b.depends[0].service");
    assert_eq!(p.line, Some(10));
    assert!(p.message.contains("dependency cycle: a -> b -> a"), "{p}");
}

#[test]
fn self_dependency_and_longer_cycles() {
    let yaml = "version: v1\ndeployment: shop\nservices:\n  a:\n    image: { name: a }\n    depends: [ { service: a } ]\n  b:\n    image: { name: b }\n    depends: [ { service: c } ]\n  c:\n    image: { name: c }\n    depends: [ { service: d } ]\n  d:\n    image: { name: d }\n    depends: [ { service: b } ]\n";
    let errs = errors(yaml);
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(problem_at(&errs, "services.a.depends[0].service")
        .message
        .contains("cycle: a -> a"));
    assert!(problem_at(&errs, "services.d.depends[0].service")
        .message
        .contains("cycle: b -> c -> d -> b"));
}

#[test]
fn unknown_dependency_is_reported() {
    assert_single(
        &one_service("depends:\n  - { service: dbx, condition: ready }"),
        "services.web.depends[0].service",
        7,
        "depends on unknown service \"dbx\"; known services: web",
    );
}

#[test]
fn unknown_isolation_label() {
    assert_single(
        &one_service("labels:\n  com.zlayer.isolation: jail\n  other: anything"),
        "services.web.labels.\"com.zlayer.isolation\"",
        7,
        "unknown isolation \"jail\"; use one of: container, sandbox, vm",
    );
}

#[test]
fn empty_image_name_and_missing_image() {
    let yaml = "version: v1\ndeployment: shop\nservices:\n  a:\n    image: { name: \"\" }\n  b:\n    env: { X: y }\n  c:\n    image: alpine\n";
    let errs = errors(yaml);
    assert_eq!(errs.len(), 3, "{errs}");
    let p = problem_at(&errs, "services.a.image.name");
    assert_eq!(p.line, Some(5));
    assert!(p.message.contains("image name is empty"), "{p}");
    let p = problem_at(&errs, "services.b");
    assert_eq!(p.line, Some(6));
    assert!(
        p.message.contains("required field \"image\" is missing"),
        "{p}"
    );
    let p = problem_at(&errs, "services.c.image");
    assert_eq!(p.line, Some(9));
    assert!(p.message.contains("image must be a mapping"), "{p}");
}

#[test]
fn bad_version() {
    assert_single(
        "version: v2\ndeployment: shop\nservices:\n  web:\n    image: { name: x }\n",
        "version",
        1,
        "unsupported version \"v2\"; use v1",
    );
}

#[test]
fn bad_signal() {
    assert_single(
        &one_service("stop_signal: SIGFOO"),
        "services.web.stop_signal",
        6,
        "\"SIGFOO\" is not a signal",
    );
    parse_deployment(&one_service("stop_signal: term")).unwrap();
    parse_deployment(&one_service("stop_signal: 9")).unwrap();
}

#[test]
fn zero_replicas_and_bad_cpu() {
    let errs = errors(&one_service(
        "scale: { mode: fixed, replicas: 0 }\nresources: { cpu: -1 }",
    ));
    assert_eq!(errs.len(), 2, "{errs}");
    let p = problem_at(&errs, "services.web.scale.replicas");
    assert_eq!(p.line, Some(6));
    assert!(p.message.contains("replicas must be at least 1"), "{p}");
    let p = problem_at(&errs, "services.web.resources.cpu");
    assert_eq!(p.line, Some(7));
    assert!(p.message.contains("must be more than 0"), "{p}");
    assert_single(
        &one_service("resources: { cpu: 0 }"),
        "services.web.resources.cpu",
        6,
        "more than 0",
    );
}

#[test]
fn unknown_enum_words_do_not_hide_other_problems() {
    let yaml = concat!(
        "version: v1\ndeployment: shop\nservices:\n  web:\n",
        "    image: { name: x, pull_policy: sometimes }\n",
        "    network_mode: overlay\n",
        "    rtype: daemon\n",
        "    storage: [ { type: nfs, target: /x } ]\n",
        "    restart_policy: { kind: never }\n",
        "    resources: { memory: 1Qi }\n",
    );
    let errs = errors(yaml);
    assert_eq!(errs.len(), 6, "{errs}");
    let p = problem_at(&errs, "services.web.image.pull_policy");
    assert!(
        p.message.contains(
            "unknown value \"sometimes\"; use one of: always, if_not_present, never, newer"
        ),
        "{p}"
    );
    assert!(problem_at(&errs, "services.web.network_mode")
        .message
        .contains("use bridge, host, none or bridge:NAME"));
    assert!(problem_at(&errs, "services.web.rtype")
        .message
        .contains("use one of: service, job"));
    assert!(problem_at(&errs, "services.web.storage[0].type")
        .message
        .contains("use one of: bind, named, anonymous, tmpfs"));
    assert!(problem_at(&errs, "services.web.restart_policy.kind")
        .message
        .contains("on_failure"));
    assert_eq!(
        problem_at(&errs, "services.web.resources.memory").line,
        Some(10)
    );
}

#[test]
fn wrong_types_are_located() {
    let errs = errors(&one_service(
        "endpoints: { name: http }\nresources: { pids_limit: many }",
    ));
    assert_eq!(errs.len(), 2, "{errs}");
    assert_eq!(problem_at(&errs, "services.web.endpoints").line, Some(6));
    assert_eq!(
        problem_at(&errs, "services.web.resources.pids_limit").line,
        Some(7)
    );
}

#[test]
fn five_mistakes_are_all_reported() {
    let errs = parse_deployment_file(&common::examples_dir().join("invalid.yaml")).unwrap_err();
    assert_eq!(errs.len(), 5, "{errs}");
    let expected = [
        (
            13,
            "services.web.resources.memroy",
            "unknown field \"memroy\"",
        ),
        (
            17,
            "services.worker.resources.memory",
            "\"12Qi\" is not a size",
        ),
        (
            19,
            "services.worker.health.interval",
            "\"10x\" is not a duration",
        ),
        (
            22,
            "services.worker.depends[0].service",
            "unknown service \"dbx\"",
        ),
        (
            26,
            "services.cache.labels.\"com.zlayer.isolation\"",
            "unknown isolation \"jail\"",
        ),
    ];
    for (problem, (line, path, text)) in errs.iter().zip(expected) {
        assert_eq!(problem.path, path, "{errs}");
        assert_eq!(problem.line, Some(line), "{problem}");
        assert!(problem.message.contains(text), "{problem}");
    }
    // One line per problem, in file order.
    let shown = errs.to_string();
    assert_eq!(shown.lines().count(), 5);
    assert!(
        shown.starts_with("line 13: services.web.resources.memroy: "),
        "{shown}"
    );
}

#[test]
fn yaml_syntax_error_has_its_line() {
    let errs = errors(
        "version: v1\ndeployment: shop\nservices:\n  web:\n    image: { name: x\n    env: {}\n",
    );
    assert_eq!(errs.len(), 1, "{errs}");
    let p = &errs.problems[0];
    assert!(p.message.starts_with("invalid YAML"), "{p}");
    assert!(matches!(p.line, Some(5..=7)), "{p}");
    let errs = errors("version: v1\n  deployment: shop\n");
    assert!(errs.problems[0].line.is_some(), "{errs}");
}

#[test]
fn empty_and_non_mapping_documents() {
    assert!(errors("").to_string().contains("the spec is empty"));
    assert!(errors("# only a comment\n")
        .to_string()
        .contains("the spec is empty"));
    let errs = errors("- web\n- db\n");
    assert!(errs.to_string().contains("must be a mapping"), "{errs}");
    let errs = errors("version: v1\n");
    assert!(
        errs.to_string()
            .contains("required field \"deployment\" is missing"),
        "{errs}"
    );
}

#[test]
fn missing_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let errs = parse_deployment_file(&dir.path().join("nope.yaml")).unwrap_err();
    let text = errs.to_string();
    assert!(
        text.contains("cannot read spec file") && text.contains("nope.yaml"),
        "{text}"
    );
}

#[test]
fn validate_without_text_gives_paths_only() {
    let mut spec = parse_deployment(&one_service("")).unwrap();
    spec.version = "v9".into();
    let web = spec.services.get_mut("web").unwrap();
    web.resources.memory = Some(
        "9Zi"
            .parse()
            .unwrap_or_else(|_| zlayer_spec::ByteSize::from_bytes(0)),
    );
    let errs = spec.validate().unwrap_err();
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs.iter().all(|p| p.line.is_none()));
    assert_eq!(
        problem_at(&errs, "version").to_string(),
        "version: unsupported version \"v9\"; use v1"
    );
    problem_at(&errs, "services.web.resources.memory");
}

#[test]
fn duplicate_keys_are_all_reported() {
    let errs = errors(&one_service("image: { name: y }\nenv: { A: 1, A: 2 }"));
    assert_eq!(errs.len(), 2, "{errs}");
    assert_eq!(problem_at(&errs, "services.web.image").line, Some(6));
    let p = problem_at(&errs, "services.web.env.A");
    assert_eq!(p.line, Some(7));
    assert!(p.message.contains("written twice"), "{p}");
}
