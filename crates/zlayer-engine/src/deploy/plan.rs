//! The pure half of a deployment: what to do, computed from the spec and the
//! containers that exist.

use super::order::dependency_order;
use crate::engine::{DEPLOYMENT_LABEL, SERVICE_LABEL};
use crate::spec_hash::spec_hash;
use std::collections::BTreeMap;
use zlayer_runtime::ContainerId;
use zlayer_runtime::ContainerRecord;
use zlayer_spec::{DeploymentSpec, ResourceType, ScaleSpec, ServiceSpec};

/// An existing container of the deployment and whether it runs.
#[derive(Debug, Clone)]
pub struct Existing {
    /// Its catalog record.
    pub record: ContainerRecord,
    /// Whether its workload runs (or is paused).
    pub running: bool,
}

/// One thing to do to one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Unchanged and running (or a finished job): nothing to do.
    Keep {
        /// Service name (spec key).
        service: String,
        /// Replica number.
        replica: u32,
        /// The container id.
        id: String,
    },
    /// Unchanged but not running: start it.
    Start {
        /// Service name.
        service: String,
        /// Replica number.
        replica: u32,
        /// The container id.
        id: String,
    },
    /// The spec changed: remove this container and create the replica anew.
    Replace {
        /// Service name.
        service: String,
        /// Replica number.
        replica: u32,
        /// The old container's id.
        id: String,
    },
    /// The replica does not exist: create and start it.
    Create {
        /// Service name.
        service: String,
        /// Replica number.
        replica: u32,
    },
    /// The service left the spec or was scaled down: remove the container.
    Remove {
        /// Service name.
        service: String,
        /// Replica number.
        replica: u32,
        /// The container id.
        id: String,
    },
}

/// The steps of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    /// Service name (spec key).
    pub name: String,
    /// Its replicas' steps, by replica number; scale-down removals come first.
    pub steps: Vec<Step>,
}

/// Everything a deployment needs done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The deployment's name.
    pub deployment: String,
    /// Containers of services no longer in the spec.
    pub removals: Vec<Step>,
    /// The services, dependencies first.
    pub services: Vec<ServicePlan>,
}

impl Plan {
    /// True when nothing would change.
    pub fn is_noop(&self) -> bool {
        self.removals.is_empty()
            && self
                .services
                .iter()
                .all(|s| s.steps.iter().all(|st| matches!(st, Step::Keep { .. })))
    }

    /// Every step, removals first.
    pub fn steps(&self) -> impl Iterator<Item = &Step> {
        self.removals
            .iter()
            .chain(self.services.iter().flat_map(|s| s.steps.iter()))
    }
}

/// `<deployment>-<service>-<n>`.
pub fn container_name(deployment: &str, service: &str, replica: u32) -> String {
    format!("{deployment}-{service}-{replica}")
}

/// `ContainerId { service: "<deployment>-<service>", replica }`.
pub fn runtime_key(deployment: &str, service: &str, replica: u32) -> ContainerId {
    ContainerId::new(format!("{deployment}-{service}"), replica)
}

/// The spec each of a service's containers is created from: the service's,
/// with the deployment and service labels added and `scale` left at its
/// default (a container is one replica; the replica count is the plan's
/// business, so scaling does not change the hash of existing replicas).
pub fn desired_spec(deployment: &str, service: &str, spec: &ServiceSpec) -> ServiceSpec {
    let mut spec = spec.clone();
    spec.name = format!("{deployment}-{service}");
    spec.scale = ScaleSpec::default();
    spec.labels
        .insert(DEPLOYMENT_LABEL.to_string(), deployment.to_string());
    spec.labels
        .insert(SERVICE_LABEL.to_string(), service.to_string());
    spec
}

/// Which service of `deployment` a record belongs to.
fn service_of(deployment: &str, record: &ContainerRecord) -> Option<String> {
    record.spec.labels.get(SERVICE_LABEL).cloned().or_else(|| {
        record
            .container
            .service
            .strip_prefix(&format!("{deployment}-"))
            .map(str::to_string)
    })
}

/// Computes what `spec` needs given the containers in `existing` (those of
/// other deployments are ignored).
pub fn plan(spec: &DeploymentSpec, existing: &[Existing]) -> Plan {
    let dep = spec.deployment.as_str();
    // service -> replica -> container
    let mut by_service: BTreeMap<String, BTreeMap<u32, &Existing>> = BTreeMap::new();
    let mut removals = Vec::new();
    for e in existing
        .iter()
        .filter(|e| e.record.deployment.as_deref() == Some(dep))
    {
        match service_of(dep, &e.record) {
            Some(service) if spec.services.contains_key(&service) => {
                by_service
                    .entry(service)
                    .or_default()
                    .insert(e.record.container.replica, e);
            }
            other => removals.push(Step::Remove {
                service: other.unwrap_or_default(),
                replica: e.record.container.replica,
                id: e.record.id.clone(),
            }),
        }
    }
    let mut services = Vec::new();
    for name in dependency_order(&spec.services) {
        let Some(svc) = spec.services.get(&name) else {
            continue;
        };
        let want = svc.replicas();
        let hash = spec_hash(&desired_spec(dep, &name, svc));
        let have = by_service.remove(&name).unwrap_or_default();
        let mut steps = Vec::new();
        for (replica, e) in have.iter().rev() {
            if *replica == 0 || *replica > want {
                steps.push(Step::Remove {
                    service: name.clone(),
                    replica: *replica,
                    id: e.record.id.clone(),
                });
            }
        }
        for replica in 1..=want {
            let service = name.clone();
            steps.push(match have.get(&replica) {
                None => Step::Create { service, replica },
                Some(e) if e.record.spec_hash != hash => Step::Replace {
                    service,
                    replica,
                    id: e.record.id.clone(),
                },
                Some(e) if !e.running && svc.rtype == ResourceType::Service => Step::Start {
                    service,
                    replica,
                    id: e.record.id.clone(),
                },
                Some(e) => Step::Keep {
                    service,
                    replica,
                    id: e.record.id.clone(),
                },
            });
        }
        services.push(ServicePlan { name, steps });
    }
    Plan {
        deployment: dep.to_string(),
        removals,
        services,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn spec(replicas: &[(&str, u32, &str)]) -> DeploymentSpec {
        let mut d = DeploymentSpec {
            version: "v1".into(),
            deployment: "shop".into(),
            services: Default::default(),
        };
        for (name, n, image) in replicas {
            let mut s = ServiceSpec::minimal(*name, *image);
            s.scale = ScaleSpec::Fixed { replicas: *n };
            d.services.insert(name.to_string(), s);
        }
        d
    }

    fn existing(d: &DeploymentSpec, service: &str, replica: u32, running: bool) -> Existing {
        let svc = d.services.get(service).unwrap();
        let desired = desired_spec(&d.deployment, service, svc);
        Existing {
            record: ContainerRecord {
                id: format!("{service}{replica}"),
                name: container_name(&d.deployment, service, replica),
                container: runtime_key(&d.deployment, service, replica),
                version: zlayer_runtime::RECORD_VERSION,
                isolation: zlayer_spec::Isolation::Container,
                image: svc.image.name.clone(),
                spec_hash: spec_hash(&desired),
                spec: desired,
                created: SystemTime::now(),
                deployment: Some(d.deployment.clone()),
                auto_remove: false,
                labels: Default::default(),
                interactive: false,
                tty: false,
                restart_count: 0,
                stop_signal: 15,
                created_by: zlayer_sys::procfs::ProcessRef::current(),
            },
            running,
        }
    }

    #[test]
    fn fresh_deploy_creates_every_replica_in_order() {
        let mut d = spec(&[("web", 2, "busybox"), ("db", 1, "busybox")]);
        d.services.get_mut("web").unwrap().depends =
            vec![serde_json::from_value(serde_json::json!({"service": "db"})).unwrap()];
        let p = plan(&d, &[]);
        assert_eq!(p.services[0].name, "db");
        let steps: Vec<_> = p.steps().cloned().collect();
        assert_eq!(
            steps,
            vec![
                Step::Create {
                    service: "db".into(),
                    replica: 1
                },
                Step::Create {
                    service: "web".into(),
                    replica: 1
                },
                Step::Create {
                    service: "web".into(),
                    replica: 2
                },
            ]
        );
        assert!(!p.is_noop());
    }

    #[test]
    fn unchanged_is_a_noop_and_a_change_replaces_only_that_service() {
        let d = spec(&[("web", 2, "busybox"), ("db", 1, "busybox")]);
        let have = vec![
            existing(&d, "web", 1, true),
            existing(&d, "web", 2, true),
            existing(&d, "db", 1, true),
        ];
        assert!(plan(&d, &have).is_noop());

        let mut changed = d.clone();
        changed
            .services
            .get_mut("web")
            .unwrap()
            .env
            .insert("MODE".into(), "dev".into());
        let p = plan(&changed, &have);
        let steps: Vec<_> = p.steps().cloned().collect();
        assert!(steps.contains(&Step::Keep {
            service: "db".into(),
            replica: 1,
            id: "db1".into()
        }));
        assert!(steps.contains(&Step::Replace {
            service: "web".into(),
            replica: 1,
            id: "web1".into()
        }));
        assert!(steps.contains(&Step::Replace {
            service: "web".into(),
            replica: 2,
            id: "web2".into()
        }));
        assert_eq!(steps.len(), 3);
    }

    #[test]
    fn scaling_and_removed_services_and_stopped_replicas() {
        let d = spec(&[("web", 3, "busybox"), ("old", 1, "busybox")]);
        let have = vec![
            existing(&d, "web", 1, true),
            existing(&d, "web", 2, false),
            existing(&d, "web", 3, true),
            existing(&d, "old", 1, true),
        ];
        let p = plan(&d, &have);
        let steps: Vec<_> = p.steps().cloned().collect();
        assert!(steps.contains(&Step::Start {
            service: "web".into(),
            replica: 2,
            id: "web2".into()
        }));

        let mut gone = d.clone();
        gone.services.shift_remove("old");
        let p = plan(&gone, &have);
        assert_eq!(
            p.removals,
            vec![Step::Remove {
                service: "old".into(),
                replica: 1,
                id: "old1".into()
            }]
        );

        // Scaling keeps the existing replicas.
        let mut up = d.clone();
        up.services.get_mut("web").unwrap().scale = ScaleSpec::Fixed { replicas: 4 };
        let steps: Vec<_> = plan(&up, &have).steps().cloned().collect();
        assert!(steps.contains(&Step::Create {
            service: "web".into(),
            replica: 4
        }));
        assert!(steps.contains(&Step::Keep {
            service: "web".into(),
            replica: 3,
            id: "web3".into()
        }));
        assert!(!steps.iter().any(|s| matches!(s, Step::Replace { .. })));

        let mut down = d.clone();
        down.services.get_mut("web").unwrap().scale = ScaleSpec::Fixed { replicas: 1 };
        let steps: Vec<_> = plan(&down, &have).steps().cloned().collect();
        assert!(steps.contains(&Step::Remove {
            service: "web".into(),
            replica: 3,
            id: "web3".into()
        }));
        assert!(steps.contains(&Step::Remove {
            service: "web".into(),
            replica: 2,
            id: "web2".into()
        }));
        assert!(steps.contains(&Step::Keep {
            service: "web".into(),
            replica: 1,
            id: "web1".into()
        }));
    }

    #[test]
    fn other_deployments_are_ignored() {
        let d = spec(&[("web", 1, "busybox")]);
        let mut other = existing(&d, "web", 1, true);
        other.record.deployment = Some("else".into());
        let p = plan(&d, &[other]);
        assert_eq!(
            p.steps().cloned().collect::<Vec<_>>(),
            vec![Step::Create {
                service: "web".into(),
                replica: 1
            }]
        );
    }
}
