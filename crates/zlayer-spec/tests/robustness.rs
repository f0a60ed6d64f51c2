//! Damaged specs never panic and always explain themselves.

mod common;

use zlayer_spec::parse_deployment;

/// Every result is a spec or at least one problem, each with a message.
fn check(yaml: &str) {
    match parse_deployment(yaml) {
        Ok(spec) => spec.validate().unwrap(),
        Err(errs) => {
            assert!(!errs.is_empty(), "an error with no problem for:\n{yaml}");
            assert!(errs.iter().all(|p| !p.message.is_empty()), "{errs}");
        }
    }
}

#[test]
fn every_line_damaged_in_turn() {
    let text = std::fs::read_to_string(common::examples_dir().join("shop.yaml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let damage: [&dyn Fn(&str) -> String; 5] = [
        &|_| String::new(),
        &|l| format!("{l}x"),
        &|l| l.replace(':', ": [1, {a: b}]"),
        &|l| l.replace(|c: char| c.is_ascii_digit(), "9"),
        &|l| format!("  {l}"),
    ];
    for i in 0..lines.len() {
        for hurt in &damage {
            let mut copy: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            copy[i] = hurt(lines[i]);
            check(&copy.join("\n"));
        }
    }
}

#[test]
fn odd_documents() {
    for yaml in [
        "version: v1\ndeployment: shop\nservices: []\n",
        "version: v1\ndeployment: shop\nservices: ~\n",
        "version: v1\ndeployment: shop\nservices:\n  web: ~\n",
        "version: v1\ndeployment: shop\nservices:\n  web: 5\n",
        "version: [v1]\ndeployment: {a: b}\nservices:\n  web:\n    image: { name: x }\n",
        "version: v1\ndeployment: shop\nservices:\n  ? [a, b]\n  : { image: { name: x } }\n",
        "version: v1\ndeployment: shop\nservices:\n  web: &w { image: { name: x } }\n  api:\n    <<: *w\n    env: { A: b }\n",
        "--- \nversion: v1\n---\nversion: v2\n",
        "\u{feff}version: v1\ndeployment: shop\nservices: {}\n",
        "version: !!binary aGVsbG8=\ndeployment: shop\n",
    ] {
        check(yaml);
    }
}
