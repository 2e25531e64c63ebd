//! vsh's secret verbs, worded as virsh's.

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use domdriver::Connect;

use super::{no_more, print_table, read_xml_file, take_arg, take_flag, take_opt};

pub const USAGE: &str = "  secret-define FILE                define or redefine a secret from XML
  secret-set-value UUID (--file F [--plain] | --base64 B)
                                    set a secret's value (F holds base64 unless --plain)
  secret-list                       list secrets
  secret-undefine UUID              remove a secret and its value
";

pub fn run(conn: &Connect, verb: &str, rest: &mut Vec<String>) -> Result<()> {
    match verb {
        "secret-define" => {
            let file = take_arg(verb, rest, "file")?;
            no_more(verb, rest)?;
            let xml = read_xml_file(&file)?;
            let s = conn
                .define_secret_xml(&xml)
                .with_context(|| format!("Failed to set attributes from {file}"))?;
            println!("Secret {} created", s.uuid_string());
        }
        "secret-set-value" => {
            let uuid = take_arg(verb, rest, "secret")?;
            let file = take_opt(rest, "file")?;
            let b64 = take_opt(rest, "base64")?;
            let plain = take_flag(rest, "plain");
            no_more(verb, rest)?;
            let value = match (file, b64) {
                (Some(_), Some(_)) => {
                    bail!("Options --file and --base64 are mutually exclusive")
                }
                (None, None) => bail!("Input secret value is missing"),
                (Some(f), None) => {
                    let data = std::fs::read(&f).map_err(|e| {
                        anyhow::anyhow!(
                            "failed to read secret file '{f}': {}",
                            domdriver::driver::config::strerror(&e)
                        )
                    })?;
                    if plain {
                        data
                    } else {
                        decode(data.trim_ascii())?
                    }
                }
                (None, Some(b)) => decode(b.trim().as_bytes())?,
            };
            let s = conn.lookup_secret_by_uuid(&uuid)?;
            s.set_value(&value)?;
            println!("Secret value set");
        }
        "secret-list" => {
            no_more(verb, rest)?;
            let rows: Vec<Vec<String>> = conn
                .list_secrets()?
                .iter()
                .map(|s| {
                    let usage = match s.usage_id() {
                        Some(id) => format!("{} {id}", s.usage_type()),
                        None => "Unused".to_string(),
                    };
                    vec![s.uuid_string().to_string(), usage]
                })
                .collect();
            print_table(&["UUID", "Usage"], &rows);
        }
        "secret-undefine" => {
            let uuid = take_arg(verb, rest, "secret")?;
            no_more(verb, rest)?;
            let s = conn.lookup_secret_by_uuid(&uuid)?;
            s.undefine()
                .with_context(|| format!("Failed to delete secret {uuid}"))?;
            println!("Secret {uuid} deleted");
        }
        _ => bail!("unknown command: '{verb}'"),
    }
    Ok(())
}

fn decode(b: &[u8]) -> Result<Vec<u8>> {
    B64.decode(b)
        .map_err(|_| anyhow::anyhow!("Invalid base64 data"))
}
