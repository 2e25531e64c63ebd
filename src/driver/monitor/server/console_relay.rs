//! `vsh console` through the monitor: once a connection took a console session as a
//! stream, the monitor is the one that reads and writes the guest's pty and the connection
//! carries the bytes both ways. One reader of the pty per session, whoever the caller is,
//! and a `--force` elsewhere or the guest's end closes the connection, which ends the
//! session on the caller's side. (libvirt: virChrdevOpen hands the pty to a virStream.)

use std::io::{Read, Write};
use std::path::Path;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

/// Relay between the pty at `pty` and the connection until one of them ends, the session
/// is taken (`kick`) or the guest ends (`end`).
pub(super) async fn relay(
    pty: &Path,
    rd: BufReader<OwnedReadHalf>,
    mut wr: OwnedWriteHalf,
    kick: &mut mpsc::UnboundedReceiver<()>,
    end: &mut watch::Receiver<bool>,
) {
    let Ok(file) = crate::driver::console::open_pty(pty) else {
        return;
    };
    // SAFETY: the File is moved into the AsyncFd, which keeps it open (and the same fd)
    // until the AsyncFd is dropped.
    let Ok(pty) = (unsafe { AsyncFd::register(file) }) else {
        return;
    };
    // What the caller sent right behind its request is for the guest too.
    let early = rd.buffer().to_vec();
    if write_pty(&pty, &early).await.is_err() {
        return;
    }
    let mut rd = rd.into_inner();
    let mut from_guest = [0u8; 4096];
    let mut from_caller = [0u8; 4096];
    loop {
        tokio::select! {
            biased;
            Some(()) = kick.recv() => return,
            _ = end.changed() => return,
            ready = pty.readable() => {
                let Ok(mut ready) = ready else { return };
                match ready.try_io(|f| f.get_ref().read(&mut from_guest)) {
                    // QEMU closed the pty's other end (EOF or EIO): the guest is going.
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(n)) => {
                        if wr.write_all(&from_guest[..n]).await.is_err() {
                            return;
                        }
                    }
                    Err(_would_block) => {}
                }
            }
            n = rd.read(&mut from_caller) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if write_pty(&pty, &from_caller[..n]).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
}

/// Write all of `data` to the pty, waiting while it is full.
async fn write_pty(pty: &AsyncFd<std::fs::File>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut ready = pty.writable().await?;
        match ready.try_io(|f| f.get_ref().write(data)) {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}
