//! Routing of the composite runtime, with two in-test runtimes that record
//! which containers they were asked about.

use async_trait::async_trait;
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zlayer_runtime::*;
use zlayer_spec::ServiceSpec;

/// A runtime that keeps containers in memory and logs every call.
struct Recording {
    name: String,
    containers: Mutex<HashMap<ContainerId, ContainerState>>,
    calls: Mutex<Vec<String>>,
}

impl Recording {
    fn new(name: &str) -> Arc<Self> {
        Arc::new(Recording {
            name: name.into(),
            containers: Mutex::new(HashMap::new()),
            calls: Mutex::new(Vec::new()),
        })
    }
    fn log(&self, call: &str, id: &ContainerId) {
        self.calls.lock().unwrap().push(format!("{call} {id}"));
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn get(&self, id: &ContainerId) -> Result<ContainerState> {
        self.containers
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .ok_or_else(|| RuntimeError::container_not_found(id))
    }
    fn set(&self, id: &ContainerId, state: ContainerState) -> Result<()> {
        self.get(id)?;
        self.containers.lock().unwrap().insert(id.clone(), state);
        Ok(())
    }
}

#[async_trait]
impl Runtime for Recording {
    fn name(&self) -> &str {
        &self.name
    }
    async fn pull_image_with_policy(
        &self,
        _: &str,
        _: PullPolicy,
        _: Option<&RegistryAuth>,
    ) -> Result<()> {
        Ok(())
    }
    async fn create_container(&self, id: &ContainerId, _: &ServiceSpec) -> Result<()> {
        self.log("create", id);
        self.containers
            .lock()
            .unwrap()
            .insert(id.clone(), ContainerState::Pending);
        Ok(())
    }
    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        self.log("start", id);
        self.set(id, ContainerState::Running)
    }
    async fn stop_container(&self, id: &ContainerId, _: Duration) -> Result<()> {
        self.log("stop", id);
        self.set(id, ContainerState::Exited { code: 143 })
    }
    async fn kill_container(&self, id: &ContainerId, signal: Option<&str>) -> Result<()> {
        self.log("kill", id);
        let n = validate_signal(signal.unwrap_or("KILL"))?;
        self.set(id, ContainerState::Exited { code: 128 + n })
    }
    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        self.log("remove", id);
        self.containers.lock().unwrap().remove(id);
        Ok(())
    }
    async fn container_state(&self, id: &ContainerId) -> Result<ContainerState> {
        self.log("state", id);
        self.get(id)
    }
    async fn wait_container(&self, id: &ContainerId) -> Result<i32> {
        match self.get(id)? {
            ContainerState::Exited { code } => Ok(code),
            other => Err(RuntimeError::Internal(format!("not exited: {other}"))),
        }
    }
    async fn logs_stream(&self, id: &ContainerId, _: LogsStreamOptions) -> Result<LogsStream> {
        self.log("logs", id);
        Ok(futures_util::stream::empty().boxed())
    }
    async fn exec_with_opts(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecOutput> {
        require_command(opts)?;
        self.log("exec", id);
        Ok(ExecOutput {
            exit_code: 0,
            stdout: self.name.clone(),
            stderr: String::new(),
        })
    }
    async fn get_container_stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        Err(RuntimeError::unsupported(
            &self.name,
            "stats",
            format!("test runtime ({id})"),
        ))
    }
    async fn stats_stream(&self, id: &ContainerId) -> Result<StatsStream> {
        Err(RuntimeError::unsupported(
            &self.name,
            "stats",
            format!("test runtime ({id})"),
        ))
    }
    async fn get_container_pid(&self, id: &ContainerId) -> Result<Option<u32>> {
        self.get(id).map(|_| None)
    }
    async fn get_container_ip(&self, id: &ContainerId) -> Result<Option<IpAddr>> {
        self.get(id).map(|_| None)
    }
    async fn port_mappings_container(&self, id: &ContainerId) -> Result<Vec<PortMappingEntry>> {
        self.get(id).map(|_| Vec::new())
    }
    async fn write_stdin(&self, id: &ContainerId, _: &[u8]) -> Result<()> {
        self.get(id).map(|_| ())
    }
    async fn close_stdin(&self, id: &ContainerId) -> Result<()> {
        self.get(id).map(|_| ())
    }
    async fn pause_container(&self, id: &ContainerId) -> Result<()> {
        self.set(id, ContainerState::Paused)
    }
    async fn unpause_container(&self, id: &ContainerId) -> Result<()> {
        self.set(id, ContainerState::Running)
    }
    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        Ok(vec![ImageInfo {
            reference: format!("{}-image", self.name),
            digest: None,
            size_bytes: None,
            created: None,
        }])
    }
    async fn list_containers(&self) -> Result<Vec<ContainerId>> {
        Ok(self.containers.lock().unwrap().keys().cloned().collect())
    }
}

fn composite(a: &Arc<Recording>, b: &Arc<Recording>) -> CompositeRuntime {
    let mut map: BTreeMap<String, Arc<dyn Runtime>> = BTreeMap::new();
    map.insert("container".into(), a.clone());
    map.insert("sandbox".into(), b.clone());
    CompositeRuntime::new(map, "container").unwrap()
}

fn spec_with_isolation(name: &str, isolation: Option<&str>) -> ServiceSpec {
    let mut spec = ServiceSpec::minimal(name, "busybox:latest");
    if let Some(iso) = isolation {
        spec.labels
            .insert("com.zlayer.isolation".into(), iso.into());
    }
    spec
}

#[tokio::test]
async fn label_routes_every_call_to_the_chosen_runtime() {
    let (a, b) = (Recording::new("container"), Recording::new("sandbox"));
    let rt = composite(&a, &b);
    let id = ContainerId::new("web", 1);
    rt.create_container(&id, &spec_with_isolation("web", Some("sandbox")))
        .await
        .unwrap();
    rt.start_container(&id).await.unwrap();
    assert_eq!(
        rt.container_state(&id).await.unwrap(),
        ContainerState::Running
    );
    let (code, out, _) = rt.exec(&id, &["true".to_string()]).await.unwrap();
    assert_eq!((code, out.as_str()), (0, "sandbox"));
    rt.kill_container(&id, Some("TERM")).await.unwrap();
    assert_eq!(rt.wait_container(&id).await.unwrap(), 143);
    rt.remove_container(&id).await.unwrap();
    assert!(
        a.calls().is_empty(),
        "container runtime was called: {:?}",
        a.calls()
    );
    assert_eq!(
        b.calls(),
        [
            "create web-1",
            "start web-1",
            "state web-1",
            "exec web-1",
            "kill web-1",
            "remove web-1"
        ]
    );
    assert!(rt.container_state(&id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn unlabelled_service_uses_the_node_default() {
    let (a, b) = (Recording::new("container"), Recording::new("sandbox"));
    let rt = composite(&a, &b);
    let id = ContainerId::new("db", 1);
    rt.create_container(&id, &spec_with_isolation("db", None))
        .await
        .unwrap();
    assert_eq!(rt.isolation_of(&id).await.unwrap(), "container");
    assert_eq!(a.calls(), ["create db-1"]);
    assert!(b.calls().is_empty());
}

#[tokio::test]
async fn image_annotation_chooses_when_no_label() {
    let (a, b) = (Recording::new("container"), Recording::new("sandbox"));
    let lookup: AnnotationLookup = Arc::new(|image: &str| {
        (image == "busybox:latest")
            .then(|| BTreeMap::from([("com.zlayer.runtime".to_string(), "sandbox".to_string())]))
    });
    let rt = composite(&a, &b).with_annotation_lookup(lookup);
    let id = ContainerId::new("tool", 1);
    rt.create_container(&id, &spec_with_isolation("tool", None))
        .await
        .unwrap();
    assert_eq!(rt.isolation_of(&id).await.unwrap(), "sandbox");
    // A label still wins over the annotation.
    let id2 = ContainerId::new("tool2", 1);
    rt.create_container(&id2, &spec_with_isolation("tool2", Some("container")))
        .await
        .unwrap();
    assert_eq!(rt.isolation_of(&id2).await.unwrap(), "container");
}

#[tokio::test]
async fn unknown_isolation_lists_what_the_node_offers() {
    let (a, b) = (Recording::new("container"), Recording::new("sandbox"));
    let rt = composite(&a, &b);
    let err = rt
        .create_container(
            &ContainerId::new("x", 1),
            &spec_with_isolation("x", Some("vm")),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("\"vm\"") && msg.contains("container, sandbox"),
        "{msg}"
    );
    assert!(a.calls().is_empty() && b.calls().is_empty());
}

#[tokio::test]
async fn routes_survive_a_new_composite_over_the_same_runtimes() {
    let (a, b) = (Recording::new("container"), Recording::new("sandbox"));
    let id = ContainerId::new("web", 2);
    composite(&a, &b)
        .create_container(&id, &spec_with_isolation("web", Some("sandbox")))
        .await
        .unwrap();
    // A fresh composite (e.g. after a daemon restart) finds the owner again.
    let fresh = composite(&a, &b);
    fresh.start_container(&id).await.unwrap();
    assert!(b.calls().contains(&"start web-2".to_string()));
    assert_eq!(fresh.list_containers().await.unwrap(), vec![id.clone()]);
}

#[tokio::test]
async fn remove_of_unknown_is_ok_and_other_calls_are_not_found() {
    let (a, b) = (Recording::new("container"), Recording::new("sandbox"));
    let rt = composite(&a, &b);
    let id = ContainerId::new("ghost", 1);
    rt.remove_container(&id).await.unwrap();
    assert!(rt.start_container(&id).await.unwrap_err().is_not_found());
    assert!(rt.wait_container(&id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn default_must_exist_and_images_are_merged() {
    let (a, b) = (Recording::new("container"), Recording::new("sandbox"));
    let mut map: BTreeMap<String, Arc<dyn Runtime>> = BTreeMap::new();
    map.insert("sandbox".into(), b.clone());
    let err = CompositeRuntime::new(map, "container").err().unwrap();
    assert!(err.to_string().contains("sandbox"), "{err}");
    let images = composite(&a, &b).list_images().await.unwrap();
    let refs: Vec<_> = images.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(refs, ["container-image", "sandbox-image"]);
}
