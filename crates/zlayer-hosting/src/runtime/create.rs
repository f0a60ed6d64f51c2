//! Creating a container: name, record, the launcher's preparation, plan.

use super::{blocking, HostedRuntime};
use crate::launcher::PrepareContext;
use crate::layout::StateDir;
use crate::records;
use std::collections::BTreeMap;
use std::time::SystemTime;
use zlayer_image::PullOptions;
use zlayer_runtime::{
    validate_signal, ContainerRecord, NewContainer, Result, RuntimeError, RECORD_VERSION,
};
use zlayer_spec::labels::{DEPLOYMENT_LABEL, TTY_LABEL};
use zlayer_sys::procfs::ProcessRef;

impl HostedRuntime {
    /// See [`zlayer_runtime::Runtime::create_container`]. A crash at any
    /// point leaves a container that `ps -a` shows (being created while its
    /// creator lives, interrupted after) and `rm` clears.
    pub(super) async fn create(&self, new: &NewContainer) -> Result<ContainerRecord> {
        let isolation = self.choose_isolation(&new.spec)?;
        let launcher = self.launcher(isolation)?.clone();
        let wants_tty = new.tty
            || new
                .spec
                .labels
                .get(TTY_LABEL)
                .is_some_and(|v| v.trim() == "true");
        launcher.check(&new.spec, wants_tty)?;
        let dir = self.state_dir(&new.container)?;
        let lock = self.lock(&new.container);
        let _guard = lock.lock().await;
        // The monitor's exec overlaps the rest of the create.
        self.prepare_standby(isolation);

        let image = self
            .images
            .pull(
                &new.spec.image.name,
                &PullOptions {
                    policy: new.spec.image.pull_policy,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| RuntimeError::PullFailed {
                image: new.spec.image.name.clone(),
                reason: e.to_string(),
            })?;
        let image_config =
            self.images
                .image_config(&image)
                .map_err(|e| RuntimeError::CreateFailed {
                    id: new.container.to_string(),
                    reason: format!("reading the config of image {}: {e}", image.reference),
                })?;
        let stop_signal = match new
            .spec
            .stop_signal
            .as_deref()
            .or(image_config.stop_signal.as_deref())
        {
            Some(s) => validate_signal(s)?,
            None => libc::SIGTERM,
        };
        let mut spec = new.spec.clone();
        // A terminal is asked for with `-t` or with the label.
        let tty = new.tty
            || spec
                .labels
                .get(TTY_LABEL)
                .is_some_and(|v| v.trim() == "true");
        if tty {
            spec.labels.insert(TTY_LABEL.into(), "true".into());
        }
        let mut labels: BTreeMap<String, String> = spec.labels.clone();
        if let Some(dep) = &new.deployment {
            labels.insert(DEPLOYMENT_LABEL.into(), dep.clone());
        }
        let record = ContainerRecord {
            version: RECORD_VERSION,
            id: new.id.clone(),
            name: new.name.clone(),
            container: new.container.clone(),
            isolation,
            image: spec.image.name.clone(),
            spec,
            spec_hash: new.spec_hash.clone(),
            created: SystemTime::now(),
            deployment: new.deployment.clone(),
            auto_remove: new.auto_remove,
            labels,
            interactive: new.interactive,
            tty,
            restart_count: 0,
            stop_signal,
            created_by: ProcessRef::current(),
        };

        self.reserve_name(&record, &dir)?;
        let made = blocking(|| -> Result<()> {
            self.make_dir(&dir, &record)?;
            records::write_record(&dir, &record, !new.ephemeral)?;
            zlayer_failpoints::hit("create.after-record");
            let ctx = PrepareContext {
                dir: &dir,
                record: &record,
                image: &image,
                image_config: &image_config,
                store: &self.images,
                volumes: &self.volumes,
            };
            let plan = launcher.prepare(&ctx)?;
            records::write_plan(&dir, &plan)?;
            zlayer_failpoints::hit("create.after-plan");
            Ok(())
        });
        if let Err(e) = made {
            // Nothing is left behind: the launcher's work, the directory
            // and the name.
            let _ = blocking(|| {
                crate::removal::remove_with(launcher.as_ref(), &dir, &record, &self.trash)
            });
            // The name, when the removal did not get as far.
            self.names.release(&record.name, &dir.name());
            drop(self.take_standby(isolation));
            return Err(match e {
                RuntimeError::Internal(reason) => RuntimeError::CreateFailed {
                    id: record.name.clone(),
                    reason,
                },
                other => other,
            });
        }
        Ok(record)
    }

    /// Reserves the record's name for its state dir.
    fn reserve_name(&self, record: &ContainerRecord, dir: &StateDir) -> Result<()> {
        let containers = self.layout.containers_dir();
        self.names.reserve(
            &record.name,
            &dir.name(),
            |target| {
                records::read_record(&StateDir::new(containers.join(target)))
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.name == record.name)
            },
            |target| {
                records::read_record(&StateDir::new(containers.join(target)))
                    .ok()
                    .flatten()
                    .map(|r| r.id)
                    .unwrap_or_else(|| target.to_string())
            },
        )
    }

    /// Makes the state dir (a recycled one when there is one); fails when
    /// a container with this id exists.
    fn make_dir(&self, dir: &StateDir, record: &ContainerRecord) -> Result<()> {
        if let Ok(Some(existing)) = records::read_record(dir) {
            return Err(RuntimeError::NameInUse {
                name: record.container.to_string(),
                id: existing.id,
            });
        }
        if dir.dir.exists() {
            // A directory without a record: the remains of a create that
            // crashed before its first write.
            crate::mounts::unmount_all_under(&dir.dir)?;
            crate::removal::remove_dir(&dir.dir)?;
        }
        if !self.trash.reuse(&dir.dir) {
            std::fs::create_dir(&dir.dir).map_err(|e| {
                RuntimeError::Internal(format!("creating {} failed: {e}", dir.dir.display()))
            })?;
        }
        crate::run_tmpfs::ensure_run_dir(dir).map_err(|e| {
            RuntimeError::Internal(format!("creating {} failed: {e}", dir.run().display()))
        })?;
        Ok(())
    }
}
