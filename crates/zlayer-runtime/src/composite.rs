//! [`CompositeRuntime`]: routes each container to the runtime of its isolation.

use crate::error::{Result, RuntimeError};
use crate::runtime::{ExecStream, LogsStream, RegistryAuth, Runtime, StatsStream};
use crate::types::{
    ContainerId, ContainerState, ContainerStats, ExecOptions, ExecOutput, ImageInfo,
    LogsStreamOptions, PortMappingEntry,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;
use zlayer_spec::{PullPolicy, ServiceSpec, ISOLATION_LABEL, RUNTIME_ANNOTATION};

/// Looks up an image's annotations/labels (for `com.zlayer.runtime`), without
/// network access. Returns `None` when the image is not known locally.
pub type AnnotationLookup = Arc<dyn Fn(&str) -> Option<BTreeMap<String, String>> + Send + Sync>;

/// Holds the runtimes of a node by isolation name and routes every call for a
/// container to the runtime chosen when it was created.
///
/// The choice, in order: the service label `com.zlayer.isolation`, the image
/// annotation `com.zlayer.runtime`, the node default. Routes of containers
/// created by an earlier process are found again by asking each runtime for
/// its containers.
pub struct CompositeRuntime {
    runtimes: BTreeMap<String, Arc<dyn Runtime>>,
    default: String,
    annotations: Option<AnnotationLookup>,
    routes: RwLock<HashMap<ContainerId, String>>,
}

impl CompositeRuntime {
    /// A composite over `runtimes` (keyed by isolation name) that uses
    /// `default` when neither the service nor the image chooses.
    pub fn new(
        runtimes: BTreeMap<String, Arc<dyn Runtime>>,
        default: impl Into<String>,
    ) -> Result<Self> {
        let default = default.into();
        if !runtimes.contains_key(&default) {
            return Err(RuntimeError::Configuration(format!(
                "default isolation {default:?} is not among this node's runtimes ({})",
                offered(&runtimes)
            )));
        }
        Ok(CompositeRuntime {
            runtimes,
            default,
            annotations: None,
            routes: RwLock::new(HashMap::new()),
        })
    }

    /// Lets the composite read image annotations (`com.zlayer.runtime`).
    pub fn with_annotation_lookup(mut self, lookup: AnnotationLookup) -> Self {
        self.annotations = Some(lookup);
        self
    }

    /// The isolation names this node offers.
    pub fn isolations(&self) -> Vec<String> {
        self.runtimes.keys().cloned().collect()
    }

    /// The runtime serving isolation `name`.
    pub fn runtime(&self, name: &str) -> Result<&Arc<dyn Runtime>> {
        self.runtimes.get(name).ok_or_else(|| {
            RuntimeError::Configuration(format!(
                "isolation {name:?} is not available on this node; it offers: {}",
                offered(&self.runtimes)
            ))
        })
    }

    /// Which isolation a service would get, and why it is valid here.
    pub fn choose_isolation(&self, spec: &ServiceSpec) -> Result<String> {
        let chosen = if let Some(label) = spec.labels.get(ISOLATION_LABEL) {
            label.clone()
        } else if let Some(annotation) = self
            .annotations
            .as_ref()
            .and_then(|lookup| lookup(&spec.image.name))
            .and_then(|a| a.get(RUNTIME_ANNOTATION).cloned())
        {
            annotation
        } else {
            self.default.clone()
        };
        self.runtime(&chosen)?;
        Ok(chosen)
    }

    /// The isolation a container was routed to.
    pub async fn isolation_of(&self, id: &ContainerId) -> Result<String> {
        if let Some(name) = self.routes.read().await.get(id) {
            return Ok(name.clone());
        }
        for (name, rt) in &self.runtimes {
            if rt.has_container(id).await? {
                self.routes.write().await.insert(id.clone(), name.clone());
                return Ok(name.clone());
            }
        }
        Err(RuntimeError::container_not_found(id))
    }

    async fn route(&self, id: &ContainerId) -> Result<&Arc<dyn Runtime>> {
        let name = self.isolation_of(id).await?;
        self.runtime(&name)
    }
}

fn offered(runtimes: &BTreeMap<String, Arc<dyn Runtime>>) -> String {
    if runtimes.is_empty() {
        "none".into()
    } else {
        runtimes.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[async_trait]
impl Runtime for CompositeRuntime {
    fn name(&self) -> &str {
        "composite"
    }

    async fn pull_image_with_policy(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<()> {
        self.runtime(&self.default)?
            .pull_image_with_policy(image, policy, auth)
            .await
    }

    async fn create_container(&self, id: &ContainerId, spec: &ServiceSpec) -> Result<()> {
        let name = self.choose_isolation(spec)?;
        let rt = self.runtime(&name)?;
        // A container id lives in one runtime at a time: a stale one elsewhere goes.
        for (other, other_rt) in &self.runtimes {
            if *other != name && other_rt.has_container(id).await? {
                other_rt.remove_container(id).await?;
            }
        }
        rt.create_container(id, spec).await?;
        self.routes.write().await.insert(id.clone(), name);
        Ok(())
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        self.route(id).await?.start_container(id).await
    }

    async fn stop_container(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        self.route(id).await?.stop_container(id, timeout).await
    }

    async fn kill_container(&self, id: &ContainerId, signal: Option<&str>) -> Result<()> {
        self.route(id).await?.kill_container(id, signal).await
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        match self.route(id).await {
            Ok(rt) => {
                rt.remove_container(id).await?;
                self.routes.write().await.remove(id);
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn container_state(&self, id: &ContainerId) -> Result<ContainerState> {
        self.route(id).await?.container_state(id).await
    }

    async fn wait_container(&self, id: &ContainerId) -> Result<i32> {
        self.route(id).await?.wait_container(id).await
    }

    async fn logs_stream(&self, id: &ContainerId, opts: LogsStreamOptions) -> Result<LogsStream> {
        self.route(id).await?.logs_stream(id, opts).await
    }

    async fn exec_with_opts(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecOutput> {
        self.route(id).await?.exec_with_opts(id, opts).await
    }

    async fn exec_stream(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecStream> {
        self.route(id).await?.exec_stream(id, opts).await
    }

    async fn get_container_stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        self.route(id).await?.get_container_stats(id).await
    }

    async fn stats_stream(&self, id: &ContainerId) -> Result<StatsStream> {
        self.route(id).await?.stats_stream(id).await
    }

    async fn get_container_pid(&self, id: &ContainerId) -> Result<Option<u32>> {
        self.route(id).await?.get_container_pid(id).await
    }

    async fn get_container_ip(&self, id: &ContainerId) -> Result<Option<IpAddr>> {
        self.route(id).await?.get_container_ip(id).await
    }

    async fn port_mappings_container(&self, id: &ContainerId) -> Result<Vec<PortMappingEntry>> {
        self.route(id).await?.port_mappings_container(id).await
    }

    async fn write_stdin(&self, id: &ContainerId, data: &[u8]) -> Result<()> {
        self.route(id).await?.write_stdin(id, data).await
    }

    async fn close_stdin(&self, id: &ContainerId) -> Result<()> {
        self.route(id).await?.close_stdin(id).await
    }

    async fn resize_terminal(&self, id: &ContainerId, rows: u16, cols: u16) -> Result<()> {
        self.route(id).await?.resize_terminal(id, rows, cols).await
    }

    async fn pause_container(&self, id: &ContainerId) -> Result<()> {
        self.route(id).await?.pause_container(id).await
    }

    async fn unpause_container(&self, id: &ContainerId) -> Result<()> {
        self.route(id).await?.unpause_container(id).await
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let mut seen = BTreeMap::new();
        for rt in self.runtimes.values() {
            for image in rt.list_images().await? {
                seen.entry(image.reference.clone()).or_insert(image);
            }
        }
        Ok(seen.into_values().collect())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerId>> {
        let mut all = Vec::new();
        let mut routes = self.routes.write().await;
        for (name, rt) in &self.runtimes {
            for id in rt.list_containers().await? {
                routes.insert(id.clone(), name.clone());
                all.push(id);
            }
        }
        all.sort();
        Ok(all)
    }
}
