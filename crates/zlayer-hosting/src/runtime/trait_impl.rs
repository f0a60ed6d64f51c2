//! [`Runtime`] for [`HostedRuntime`]: the one implementation, for every
//! isolation.

use super::HostedRuntime;
use async_trait::async_trait;
use std::net::IpAddr;
use std::time::Duration;
use zlayer_image::PullOptions;
use zlayer_runtime::{
    validate_signal, ContainerId, ContainerRecord, ContainerState, ContainerStats, ContainerView,
    ExecOptions, ExecOutput, ExecStream, ImageInfo, LogStream, LogsStream, LogsStreamOptions,
    NewContainer, PortMappingEntry, PullPolicy, RegistryAuth, Result, Runtime, RuntimeError,
    StatsStream,
};

#[async_trait]
impl Runtime for HostedRuntime {
    fn name(&self) -> &str {
        "zlayer"
    }

    async fn pull_image_with_policy(
        &self,
        image: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<()> {
        let opts = PullOptions {
            policy,
            auth: auth.cloned(),
            ..Default::default()
        };
        self.images
            .pull(image, &opts)
            .await
            .map(|_| ())
            .map_err(|e| RuntimeError::PullFailed {
                image: image.to_string(),
                reason: e.to_string(),
            })
    }

    async fn create_container(&self, new: &NewContainer) -> Result<ContainerRecord> {
        self.create(new).await
    }

    async fn container_record(&self, id: &ContainerId) -> Result<ContainerRecord> {
        self.record(id).await
    }

    async fn start_container(&self, id: &ContainerId) -> Result<()> {
        self.start(id).await
    }

    async fn stop_container(&self, id: &ContainerId, timeout: Duration) -> Result<()> {
        self.stop(id, timeout).await
    }

    async fn kill_container(&self, id: &ContainerId, signal: Option<&str>) -> Result<()> {
        let signal = validate_signal(signal.unwrap_or("KILL"))?;
        self.kill(id, signal).await
    }

    async fn remove_container(&self, id: &ContainerId) -> Result<()> {
        self.remove(id).await
    }

    async fn container_state(&self, id: &ContainerId) -> Result<ContainerState> {
        self.state(id).await
    }

    async fn wait_container(&self, id: &ContainerId) -> Result<i32> {
        self.wait(id).await
    }

    async fn logs_stream(&self, id: &ContainerId, opts: LogsStreamOptions) -> Result<LogsStream> {
        self.logs(id, opts).await
    }

    async fn exec_with_opts(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecOutput> {
        use futures_util::StreamExt;
        let mut stream = self.exec(id, opts).await?;
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(chunk) = stream.output.next().await {
            let chunk = chunk?;
            match chunk.stream {
                LogStream::Stderr => err.extend_from_slice(&chunk.data),
                _ => out.extend_from_slice(&chunk.data),
            }
        }
        Ok(ExecOutput {
            exit_code: stream.exit_code.await?,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    }

    async fn exec_stream(&self, id: &ContainerId, opts: &ExecOptions) -> Result<ExecStream> {
        self.exec(id, opts).await
    }

    async fn get_container_stats(&self, id: &ContainerId) -> Result<ContainerStats> {
        self.stats(id).await
    }

    async fn stats_stream(&self, id: &ContainerId) -> Result<StatsStream> {
        self.stats_stream_of(id).await
    }

    async fn get_container_pid(&self, id: &ContainerId) -> Result<Option<u32>> {
        self.pid(id).await
    }

    async fn get_container_ip(&self, id: &ContainerId) -> Result<Option<IpAddr>> {
        Ok(self.network(id).await?.ip)
    }

    async fn port_mappings_container(&self, id: &ContainerId) -> Result<Vec<PortMappingEntry>> {
        Ok(self.network(id).await?.ports)
    }

    async fn write_stdin(&self, id: &ContainerId, data: &[u8]) -> Result<()> {
        HostedRuntime::write_stdin(self, id, data).await
    }

    async fn close_stdin(&self, id: &ContainerId) -> Result<()> {
        HostedRuntime::close_stdin(self, id).await
    }

    async fn resize_terminal(&self, id: &ContainerId, rows: u16, cols: u16) -> Result<()> {
        self.resize(id, rows, cols).await
    }

    async fn pause_container(&self, id: &ContainerId) -> Result<()> {
        self.pause(id).await
    }

    async fn unpause_container(&self, id: &ContainerId) -> Result<()> {
        self.unpause(id).await
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>> {
        let records = self
            .images
            .list()
            .map_err(|e| RuntimeError::Internal(format!("listing images: {e}")))?;
        Ok(records
            .into_iter()
            .map(|r| ImageInfo {
                digest: Some(r.digest().to_string()),
                size_bytes: Some(r.size),
                created: r.created.clone(),
                reference: r.reference,
            })
            .collect())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerView>> {
        self.list().await
    }
}
