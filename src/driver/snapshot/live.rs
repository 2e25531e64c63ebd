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
