//! Reading and writing a container's state files. Each is written whole
//! (temp file + rename, reusing a spare inode) by one writer, so a reader
//! in any process sees a whole file or none.

use crate::exit::ExitRecord;
use crate::layout::StateDir;
use crate::monitor_record::MonitorRecord;
use serde::de::DeserializeOwned;
use zlayer_runtime::{ContainerRecord, Result};
use zlayer_sys::atomic;

/// Writes `record.json`; flushed to disk when `durable`.
pub fn write_record(dir: &StateDir, record: &ContainerRecord, durable: bool) -> Result<()> {
    let mut bytes = serde_json::to_vec(record).map_err(|e| {
        zlayer_runtime::RuntimeError::Internal(format!("encoding the container record: {e}"))
    })?;
    bytes.push(b'\n');
    let path = dir.record();
    Ok(
        atomic::write_file_atomic(&path, &bytes, durable, atomic::spare_path(&path).as_deref())
            .map_err(|e| atomic::StateFileError::Write(path.clone(), e))?,
    )
}

/// Reads `record.json`; `None` when the container does not exist.
pub fn read_record(dir: &StateDir) -> Result<Option<ContainerRecord>> {
    Ok(
        atomic::read_json::<ContainerRecord>(&dir.record())?.map(|mut r| {
            // The spec's name is not serialized (it is the map key in YAML).
            r.spec.name = r.container.service.clone();
            r
        }),
    )
}

/// Writes `launch.json` (the end of a create).
pub fn write_plan(dir: &StateDir, plan: &serde_json::Value) -> Result<()> {
    Ok(atomic::write_json_atomic(&dir.launch(), plan)?)
}

/// Reads `launch.json`; `None` while the container is being created.
pub fn read_plan(dir: &StateDir) -> Result<Option<serde_json::Value>> {
    Ok(atomic::read_json(&dir.launch())?)
}

/// A launcher's plan from the value of its `launch.json` (what the monitor
/// is handed); the error says what to do.
pub fn decode_plan<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, String> {
    T::deserialize(value).map_err(|e| {
        format!("the container's launch.json does not parse ({e}); remove the container and create it again")
    })
}

/// The launcher's plan of `dir`; `None` while it is being created or when
/// the file is unreadable (teardown and the queries then do without).
pub fn read_plan_as<T: DeserializeOwned>(dir: &StateDir) -> Option<T> {
    decode_plan(&read_plan(dir).ok().flatten()?).ok()
}

/// [`read_plan_as`] for operations that cannot do without the plan.
pub fn require_plan<T: DeserializeOwned>(dir: &StateDir) -> Result<T> {
    read_plan_as(dir).ok_or_else(|| {
        zlayer_runtime::RuntimeError::Internal(format!(
            "{} is missing or corrupt; remove the container and create it again",
            dir.launch().display()
        ))
    })
}

/// Writes `monitor.json`, after reserving the space `exit.json` will need
/// (see [`reserve_exit`]), so a monitor that could start can record its
/// workload's end even when the disk fills up meanwhile.
pub fn write_monitor(dir: &StateDir, rec: &MonitorRecord) -> Result<()> {
    reserve_exit(dir)?;
    Ok(atomic::write_json_atomic(&dir.monitor(), rec)?)
}

/// Bytes kept allocated for the exit record: far more than one takes.
const EXIT_RESERVE: usize = 4096;

/// Makes sure `exit.json`'s spare (the inode its atomic write reuses, see
/// [`atomic::spare_path`]) holds [`EXIT_RESERVE`] bytes: the write then
/// overwrites blocks it already has and needs no free space. The spare
/// has no readers, so it is filled in place (a spare left by the last exit
/// keeps its inode).
pub fn reserve_exit(dir: &StateDir) -> Result<()> {
    use std::io::Write;
    let Some(spare) = atomic::spare_path(&dir.exit()) else {
        return Ok(());
    };
    if std::fs::metadata(&spare).is_ok_and(|m| m.len() >= EXIT_RESERVE as u64) {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&spare)
        .and_then(|mut f| f.write_all(&[b' '; EXIT_RESERVE]))
        .map_err(|e| atomic::StateFileError::Write(spare.clone(), e))?;
    Ok(())
}

/// Reads `monitor.json`.
pub fn read_monitor(dir: &StateDir) -> Result<Option<MonitorRecord>> {
    Ok(atomic::read_json(&dir.monitor())?)
}

/// Writes `exit.json`.
pub fn write_exit(dir: &StateDir, rec: &ExitRecord) -> Result<()> {
    Ok(atomic::write_json_atomic(&dir.exit(), rec)?)
}

/// Reads `exit.json`.
pub fn read_exit(dir: &StateDir) -> Result<Option<ExitRecord>> {
    Ok(atomic::read_json(&dir.exit())?)
}
