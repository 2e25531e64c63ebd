//! Memory-only core dumps through QEMU's `dump-guest-memory` as the monitor's job
//! (libvirt: qemuDumpToFd, qemuDumpWaitForCompletion). As libvirt, the vCPUs stop for the
//! dump unless it is live, and run again after it.

use serde_json::{Value, json};
use tokio::sync::oneshot;

use super::jobs::{Operation, Running, Then, Wait};
use super::{ErrorCode, Lifecycle, Reply, Server};

impl Server {
    /// Start the dump; the reply comes once it has ended ([`Server::dump_ended`]).
    pub(super) async fn dump(
        &mut self,
        path: String,
        format: String,
        live: bool,
        reply: oneshot::Sender<Reply>,
    ) {
        let stops = !self.status.paused && !live;
        if stops && let Err(r) = self.stop_for_job("dump").await {
            let _ = reply.send(r);
            return;
        }
        let args = json!({
            "paging": false,
            "protocol": format!("file:{path}"),
            "detach": true,
            "format": format,
        });
        if let Err(e) = self.exec("dump-guest-memory", Some(args)).await {
            let refusal = self.failure(e);
            let _ = self.dump_ended(stops, Ok(())).await;
            let _ = reply.send(refusal);
            return;
        }
        let then = Then::Dump { stops, reply };
        self.begin_job(Running::new(Operation::Dump, Wait::Dump, then));
    }

    /// `query-dump`: `Some` once the dump has ended.
    pub(super) async fn poll_dump(&mut self) -> Option<Result<(), (ErrorCode, String)>> {
        let v = match self.exec("query-dump", None).await {
            Ok(v) => v,
            Err(e) => {
                return Some(Err((
                    ErrorCode::OperationFailed,
                    format!("cannot query the dump: {e}"),
                )));
            }
        };
        match v["status"].as_str().unwrap_or("") {
            "completed" => Some(Ok(())),
            "failed" => Some(Err((
                ErrorCode::OperationFailed,
                "memory-only dump failed".into(),
            ))),
            _ => None,
        }
    }

    /// The dump ended with `res`: the vCPUs run again if the dump stopped them.
    pub(super) async fn dump_ended(
        &mut self,
        stops: bool,
        res: Result<(), (ErrorCode, String)>,
    ) -> Reply {
        if stops {
            self.own_resume = true;
            match self.exec("cont", None).await {
                Ok(_) => {
                    self.set_state("", false, "unpaused");
                    self.broadcast_lifecycle(Lifecycle::ResumedUnpaused);
                }
                Err(e) => {
                    self.own_resume = false;
                    self.set_state("", true, "dump");
                    return self.failure(e);
                }
            }
        }
        match res {
            Ok(()) => Reply::Ok { value: Value::Null },
            Err((code, desc)) => Reply::Refused { code, desc },
        }
    }
}
