//! [`HostedRuntime`]: the [`zlayer_runtime::Runtime`] of a node,
//! implemented once over every isolation's [`Launcher`].
//!
//! It routes each new container to a launcher (the service label
//! `com.zlayer.isolation`, else the image annotation `com.zlayer.runtime`,
//! else the node default), keeps every container in one state directory
//! under the data root (the one source of truth of which containers exist),
//! starts each one's monitor, and drives running containers through the
//! monitor's control socket. Containers created by an earlier process are
//! simply there: nothing is kept in memory that the files do not say.

mod create;
mod io;
mod lifecycle;
mod names;
mod trait_impl;

pub use names::NameIndex;

use crate::control::Client;
use crate::launcher::Launcher;
use crate::layout::{Layout, StateDir};
use crate::phase::{self, Phase};
use crate::records;
use crate::removal::Trash;
use crate::standby::Standby;
use crate::volumes::VolumeStore;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use zlayer_image::ImageStore;
use zlayer_runtime::{ContainerId, ContainerRecord, Result, RuntimeError};
use zlayer_spec::labels::{ISOLATION_LABEL, RUNTIME_ANNOTATION};
use zlayer_spec::{Isolation, ServiceSpec};

/// Looks up an image's annotations and config labels (for
/// `com.zlayer.runtime`) without network access; `None` when the image is
/// not known locally.
pub type AnnotationLookup = Arc<dyn Fn(&str) -> Option<BTreeMap<String, String>> + Send + Sync>;

/// The runtime of a node: every isolation, one hosting layer.
pub struct HostedRuntime {
    layout: Layout,
    images: ImageStore,
    volumes: VolumeStore,
    launchers: BTreeMap<Isolation, Arc<dyn Launcher>>,
    /// Why an isolation this node would offer cannot run here (the
    /// container isolation without root), for the error of its users.
    unavailable: BTreeMap<Isolation, String>,
    default_isolation: Isolation,
    annotations: Option<AnnotationLookup>,
    names: NameIndex,
    trash: Trash,
    /// A monitor per isolation started ahead of the next start.
    standby: Mutex<HashMap<Isolation, Standby>>,
    /// Serialises create/start/stop/remove of one container in this process.
    locks: Mutex<HashMap<ContainerId, Arc<tokio::sync::Mutex<()>>>>,
}

impl std::fmt::Debug for HostedRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedRuntime")
            .field("root", &self.layout.root())
            .field("isolations", &self.launchers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Drop for HostedRuntime {
    /// Lets pending background deletions finish, so a short-lived process
    /// (the CLI) leaves no trash behind.
    fn drop(&mut self) {
        self.trash.wait();
    }
}

impl HostedRuntime {
    /// A runtime over the data root of `images`, offering `launchers`, with
    /// `default_isolation` for services and images that do not choose (the
    /// default must be offered, or declared with [`Self::with_unavailable`]
    /// and then refused with its reason at use).
    pub fn new(
        images: ImageStore,
        launchers: Vec<Arc<dyn Launcher>>,
        default_isolation: Isolation,
    ) -> Result<Self> {
        let layout = Layout::new(images.root());
        let launchers: BTreeMap<Isolation, Arc<dyn Launcher>> =
            launchers.into_iter().map(|l| (l.isolation(), l)).collect();
        for d in [layout.containers_dir(), layout.volumes_dir()] {
            zlayer_image::ensure_dir(&d).map_err(|e| {
                RuntimeError::Configuration(format!(
                    "cannot create {}: {e}; run as root or choose another data root",
                    d.display()
                ))
            })?;
        }
        let trash = Trash::new(&layout.containers_dir());
        // Finish deletions an earlier process left half done.
        trash.sweep();
        Ok(HostedRuntime {
            volumes: VolumeStore::new(layout.volumes_dir()),
            names: NameIndex::in_containers_dir(&layout.containers_dir()),
            layout,
            images,
            launchers,
            unavailable: BTreeMap::new(),
            default_isolation,
            annotations: None,
            trash,
            standby: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// Declares `isolation` unavailable here for `reason` (what to do about
    /// it): containers asking for it are refused with that reason.
    pub fn with_unavailable(mut self, isolation: Isolation, reason: String) -> Self {
        self.unavailable.insert(isolation, reason);
        self
    }

    /// Lets the runtime read image annotations (`com.zlayer.runtime`).
    pub fn with_annotation_lookup(mut self, lookup: AnnotationLookup) -> Self {
        self.annotations = Some(lookup);
        self
    }

    /// The data root layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// The named volumes.
    pub fn volumes(&self) -> &VolumeStore {
        &self.volumes
    }

    /// Waits until the directories of removed containers are deleted (they
    /// are deleted in the background).
    pub fn wait_for_deletions(&self) {
        self.trash.wait();
    }

    /// The isolations this node offers.
    pub fn isolations(&self) -> Vec<Isolation> {
        self.launchers.keys().copied().collect()
    }

    /// The launcher of `isolation`.
    pub fn launcher(&self, isolation: Isolation) -> Result<&Arc<dyn Launcher>> {
        self.launchers
            .get(&isolation)
            .ok_or_else(|| match self.unavailable.get(&isolation) {
                Some(why) => RuntimeError::Configuration(why.clone()),
                None => RuntimeError::Configuration(format!(
                    "isolation {isolation} is not available on this node; it offers: {}",
                    offered(&self.launchers)
                )),
            })
    }

    /// Which isolation a service gets: its label, else its image's
    /// annotation, else the node default; checked to be offered here.
    pub fn choose_isolation(&self, spec: &ServiceSpec) -> Result<Isolation> {
        let chosen = if let Some(label) = spec.labels.get(ISOLATION_LABEL) {
            Some((label.clone(), "the label com.zlayer.isolation"))
        } else {
            self.annotations
                .as_ref()
                .and_then(|lookup| lookup(&spec.image.name))
                .and_then(|a| a.get(RUNTIME_ANNOTATION).cloned())
                .map(|a| (a, "the image annotation com.zlayer.runtime"))
        };
        let isolation = match chosen {
            None => self.default_isolation,
            Some((word, source)) => word.parse::<Isolation>().map_err(|_| {
                RuntimeError::InvalidSpec(format!(
                    "{source} asks for isolation {word:?}; use one of {}",
                    offered(&self.launchers)
                ))
            })?,
        };
        self.launcher(isolation)?;
        Ok(isolation)
    }

    /// The state dir of `id`.
    pub fn state_dir(&self, id: &ContainerId) -> Result<StateDir> {
        self.layout.state_dir(id)
    }

    /// The state dir and record of an existing container.
    fn load(&self, id: &ContainerId) -> Result<(StateDir, ContainerRecord)> {
        let dir = self.state_dir(id)?;
        match records::read_record(&dir)? {
            Some(r) if r.container == *id => Ok((dir, r)),
            _ => Err(RuntimeError::container_not_found(id)),
        }
    }

    /// The container's phase, with a lost monitor dealt with: its
    /// workload's remains are killed and the end is recorded.
    fn observe(&self, dir: &StateDir, record: &ContainerRecord) -> Result<Phase> {
        let phase = phase::observe(dir, record)?;
        if let Phase::Lost(monitor) = &phase {
            return self.reconcile_lost(dir, record, monitor);
        }
        Ok(phase)
    }

    fn client(dir: &StateDir) -> Client {
        Client::new(dir.socket())
    }

    fn lock(&self, id: &ContainerId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.clone()).or_default().clone()
    }

    /// Starts a standby monitor for the next start of `isolation` unless a
    /// fresh one waits already: its exec overlaps the rest of a create.
    fn prepare_standby(&self, isolation: Isolation) {
        let Ok(launcher) = self.launcher(isolation) else {
            return;
        };
        let mut slots = self.standby.lock().unwrap_or_else(|p| p.into_inner());
        if slots.get(&isolation).is_some_and(Standby::is_fresh) {
            return;
        }
        if let Some(s) = launcher
            .monitor_binary()
            .ok()
            .and_then(|bin| Standby::spawn(&bin).ok())
        {
            slots.insert(isolation, s);
        }
    }

    fn take_standby(&self, isolation: Isolation) -> Option<Standby> {
        self.standby
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&isolation)
    }

    /// Every container directory's record (oldest first).
    fn all_records(&self) -> Vec<(StateDir, ContainerRecord)> {
        let Ok(entries) = std::fs::read_dir(self.layout.containers_dir()) else {
            return Vec::new();
        };
        let mut out: Vec<(StateDir, ContainerRecord)> = entries
            .flatten()
            .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
            .filter_map(|e| {
                let dir = StateDir::new(e.path());
                let rec = records::read_record(&dir).ok().flatten()?;
                Some((dir, rec))
            })
            .collect();
        out.sort_by(|a, b| {
            a.1.created
                .cmp(&b.1.created)
                .then_with(|| a.1.name.cmp(&b.1.name))
        });
        out
    }
}

fn offered(launchers: &BTreeMap<Isolation, Arc<dyn Launcher>>) -> String {
    if launchers.is_empty() {
        "none".into()
    } else {
        launchers
            .keys()
            .map(|i| i.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs short blocking filesystem work (a create, a removal: milliseconds)
/// from async code without a thread hand-off: `block_in_place` on a
/// multi-thread runtime, inline on a current-thread one (a CLI).
pub(crate) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
