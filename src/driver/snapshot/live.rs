//! The running guest's side: its block nodes (`query-block`) and the snapshot jobs its
//! monitor runs.

use serde_json::Value;

use crate::driver::DriverError;
use crate::driver::domain::guest_err;
use crate::driver::monitor::proto::{Reply, Request, SnapshotJob};
use crate::driver::process::Guest;

/// One disk's top node as QEMU has it.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// The image file of the top node.
    pub file: String,
    /// The format node's name.
    pub node: String,
    /// `qcow2`, `raw`, ...
    pub format: String,
    pub virtual_size: u64,
}

/// Every disk's top node.
pub(crate) fn nodes(g: &mut Guest) -> Result<Vec<Node>, DriverError> {
    let v = g.qmp("query-block", None).map_err(guest_err)?;
    Ok(v.as_array()
        .map(|a| a.iter().filter_map(node_of).collect())
        .unwrap_or_default())
}

fn node_of(dev: &Value) -> Option<Node> {
    let ins = dev.get("inserted")?;
    Some(Node {
        file: ins["file"].as_str()?.to_string(),
        node: ins["node-name"].as_str()?.to_string(),
        format: ins["drv"].as_str().unwrap_or("").to_string(),
        virtual_size: ins["image"]["virtual-size"].as_u64().unwrap_or(0),
    })
}

/// The node whose image is `path`.
pub(crate) fn node_for<'a>(nodes: &'a [Node], path: &str) -> Result<&'a Node, DriverError> {
    nodes.iter().find(|n| n.file == path).ok_or_else(|| {
        DriverError::Internal(format!("cannot find the block node of disk image '{path}'"))
    })
}

/// Run one snapshot job through the guest's monitor.
pub(crate) fn job(g: &mut Guest, job: SnapshotJob) -> Result<(), DriverError> {
    match g.call(&Request::Snapshot { job }).map_err(guest_err)? {
        Reply::Ok { .. } => Ok(()),
        other => Err(DriverError::Internal(format!(
            "unexpected reply from the guest's monitor: {other:?}"
        ))),
    }
}

/// A disk that a snapshot put on a new overlay: what [`move_back`] needs to undo it.
#[derive(Debug, Clone)]
pub(crate) struct Moved {
    /// The disk's target name.
    pub dst: String,
    /// The format node of the image the disk was on, now the overlay's backing.
    pub base_node: String,
    /// The overlay's format and storage nodes.
    pub format: String,
    pub storage: String,
    /// The overlay's file.
    pub file: String,
}

/// The id of the job that takes disk `dst` back off its overlay. Not one of the block
/// verbs' ids ([`crate::driver::blockjob::BlockJobType::from_id`]): the monitor leaves it
/// alone, so no block job event goes out and the definitions, which never named the
/// overlay, are not rewritten.
fn undo_id(dst: &str) -> String {
    format!("snapshot-undo-{dst}")
}

/// Put each disk of `moved` back on the image it was on, and remove its overlay: the nodes
/// and the file. The overlays must be empty (the vCPUs stopped since they were put on
/// top): an active `block-commit` of the overlay into its backing image copies nothing,
/// and its completion pivots the device back onto that image, as `blockcommit --active
/// --pivot` does (libvirt: qemuBlockCommit, qemuBlockPivot). Every disk is tried; the
/// first error is returned, and a disk that failed keeps its overlay.
pub(crate) fn move_back(g: &mut Guest, moved: &[Moved]) -> Result<(), DriverError> {
    let mut first: Option<DriverError> = None;
    for m in moved {
        match commit_back(g, m) {
            Ok(()) => {
                // Format first: it holds its file.
                for n in [&m.format, &m.storage] {
                    let _ = g.qmp("blockdev-del", Some(serde_json::json!({ "node-name": n })));
                }
                let _ = std::fs::remove_file(&m.file);
            }
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// The active commit of one overlay, through to its end.
fn commit_back(g: &mut Guest, m: &Moved) -> Result<(), DriverError> {
    use serde_json::json;
    let id = undo_id(&m.dst);
    g.qmp(
        "block-commit",
        Some(json!({
            "job-id": id,
            "device": m.format,
            "top-node": m.format,
            "base-node": m.base_node,
            "auto-dismiss": false,
        })),
    )
    .map_err(guest_err)?;
    let mut completed = false;
    // An empty overlay takes QEMU no time; a bound all the same, never a hang.
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs_f64(60.0 * crate::driver::console::timeout_multiplier());
    let res = (|| loop {
        if std::time::Instant::now() > deadline {
            return Err(DriverError::Timeout(format!(
                "disk '{}' did not move back off its overlay",
                m.dst
            )));
        }
        let status = qemu_job(g, &id)?;
        match status.as_ref().and_then(|j| j["status"].as_str()) {
            Some("ready") if !completed => {
                g.qmp("job-complete", Some(json!({ "id": id })))
                    .map_err(guest_err)?;
                completed = true;
            }
            Some("concluded") => {
                let j = status.unwrap_or_default();
                let _ = g.qmp("job-dismiss", Some(json!({ "id": id })));
                return match j["error"].as_str() {
                    Some(e) => Err(DriverError::OperationFailed(format!(
                        "cannot move disk '{}' back off its overlay: {e}",
                        m.dst
                    ))),
                    None if completed => Ok(()),
                    None => Err(DriverError::OperationFailed(format!(
                        "cannot move disk '{}' back off its overlay: the job ended unready",
                        m.dst
                    ))),
                };
            }
            None => {
                return Err(DriverError::OperationFailed(format!(
                    "cannot move disk '{}' back off its overlay: its job is gone",
                    m.dst
                )));
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    })();
    if res.is_err() {
        // Whatever state it was left in, it must not stay.
        let _ = g.qmp("job-cancel", Some(json!({ "id": id })));
        let _ = g.qmp("job-dismiss", Some(json!({ "id": id })));
    }
    res
}

/// QEMU's job `id` as `query-jobs` has it.
fn qemu_job(g: &mut Guest, id: &str) -> Result<Option<Value>, DriverError> {
    let jobs = g.qmp("query-jobs", None).map_err(guest_err)?;
    Ok(jobs
        .as_array()
        .and_then(|a| a.iter().find(|j| j["id"].as_str() == Some(id)).cloned()))
}
