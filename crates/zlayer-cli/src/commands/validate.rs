//! `zlayer validate -f FILE`: parse and validate a deployment spec.

use crate::cli::{GlobalArgs, ValidateArgs};
use crate::exit;
use crate::output::Format;
use anyhow::Context;
use std::io::Read;
use std::process::ExitCode;

/// Prints `ok` (exit 0) or every problem with its line (exit 1).
pub fn run(global: &GlobalArgs, args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let (name, text) = read_spec(args)?;
    let result = zlayer_spec::parse_deployment(&text);
    match (global.format, result) {
        (Format::Table, Ok(spec)) => {
            println!(
                "ok: deployment {:?}, {} service(s)",
                spec.deployment,
                spec.services.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        (Format::Table, Err(errors)) => {
            eprintln!("{name}: {} problem(s):", errors.len());
            for problem in &errors {
                println!("{problem}");
            }
            Ok(exit::PROBLEMS_FOUND.into())
        }
        (Format::Json, result) => {
            let problems: Vec<serde_json::Value> = match &result {
                Ok(_) => Vec::new(),
                Err(errors) => errors
                    .iter()
                    .map(|p| {
                        serde_json::json!({"path": p.path, "line": p.line, "message": p.message})
                    })
                    .collect(),
            };
            let ok = result.is_ok();
            println!(
                "{}",
                serde_json::json!({"file": name, "ok": ok, "problems": problems})
            );
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                exit::PROBLEMS_FOUND.into()
            })
        }
    }
}

fn read_spec(args: &ValidateArgs) -> anyhow::Result<(String, String)> {
    if args.file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the spec from standard input")?;
        return Ok(("<stdin>".into(), text));
    }
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read spec file {name}; check the path given to -f"))?;
    Ok((name, text))
}
