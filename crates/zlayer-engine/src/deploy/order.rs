//! Start order of a deployment's services.

use indexmap::IndexMap;
use zlayer_spec::ServiceSpec;

/// Service names so that every service comes after the services it depends
/// on; otherwise in file order. Dependencies on unknown services are
/// ignored and services in a cycle (both rejected by validation) come last,
/// in file order.
pub fn dependency_order(services: &IndexMap<String, ServiceSpec>) -> Vec<String> {
    let mut done: Vec<String> = Vec::with_capacity(services.len());
    loop {
        let next = services.iter().find(|(name, svc)| {
            !done.contains(name)
                && svc
                    .depends
                    .iter()
                    .filter(|d| services.contains_key(&d.service))
                    .all(|d| done.contains(&d.service))
        });
        match next {
            Some((name, _)) => done.push(name.clone()),
            None => break,
        }
    }
    for name in services.keys() {
        if !done.contains(name) {
            done.push(name.clone());
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use zlayer_spec::DependsSpec;

    fn svc(deps: &[&str]) -> ServiceSpec {
        let mut s = ServiceSpec::minimal("", "busybox");
        s.depends = deps
            .iter()
            .map(|d| {
                serde_json::from_value::<DependsSpec>(serde_json::json!({"service": d})).unwrap()
            })
            .collect();
        s
    }

    #[test]
    fn dependencies_first_then_file_order() {
        let mut m = IndexMap::new();
        m.insert("web".to_string(), svc(&["api"]));
        m.insert("api".to_string(), svc(&["db", "cache"]));
        m.insert("db".to_string(), svc(&[]));
        m.insert("cache".to_string(), svc(&[]));
        m.insert("worker".to_string(), svc(&["nope"]));
        assert_eq!(
            dependency_order(&m),
            ["db", "cache", "api", "web", "worker"]
        );
    }

    #[test]
    fn cycles_come_last() {
        let mut m = IndexMap::new();
        m.insert("a".to_string(), svc(&["b"]));
        m.insert("b".to_string(), svc(&["a"]));
        m.insert("c".to_string(), svc(&[]));
        assert_eq!(dependency_order(&m), ["c", "a", "b"]);
    }
}
