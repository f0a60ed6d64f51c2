//! `zlayer exec`.

use super::node::open_engine;
use crate::cli::{ExecArgs, GlobalArgs};
use crate::output::{print_json, Format};
use std::io::{Read, Write};
use std::process::ExitCode;
use zlayer_runtime::ExecOptions;

/// Runs a command in a running container and exits with its code.
pub async fn run(g: &GlobalArgs, args: ExecArgs) -> anyhow::Result<ExitCode> {
    if args.tty {
        anyhow::bail!(
            "exec -t is not supported: exec runs on pipes (a container run with -t has a terminal of its own); run exec without -t"
        );
    }
    let engine = open_engine(g)?;
    let record = engine.resolve(&args.container)?;
    let mut opts = ExecOptions::command(args.command.clone());
    for kv in &args.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        opts.env.insert(k.to_string(), v.to_string());
    }
    opts.user = args.user.clone();
    opts.working_dir = args.workdir.clone();
    if args.interactive {
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input)?;
        opts.stdin = Some(input);
    }
    let out = engine.exec(&record, &opts).await?;
    if g.format == Format::Json {
        print_json(&out)?;
    } else {
        std::io::stdout().write_all(out.stdout.as_bytes())?;
        std::io::stderr().write_all(out.stderr.as_bytes())?;
    }
    Ok((out.exit_code.clamp(0, 255) as u8).into())
}
