//! A disk's backing chain as the running QEMU has it, for the block jobs: each layer's
//! image and format node (`query-block`, `query-named-block-nodes`), the lookup of a
//! `--base`/`--top` argument in it (libvirt: virStorageSourceChainLookup), and the chain
//! written back into the live XML once a job has changed it.

use serde_json::Value;

use super::DriverError;
use super::hotplug::qmp;
use super::process::Guest;
use crate::domain::devices::{BackingStore, Disk};

/// One image of a chain, the active layer first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layer {
    pub file: String,
    pub format: String,
    /// The format node QEMU reads the image through.
    pub node: String,
}

/// The chain of the disk whose active image is `file`.
pub(crate) fn chain_of(g: &mut Guest, file: &str) -> Result<Vec<Layer>, DriverError> {
    let devs = qmp(g, "query-block", None)?;
    let dev = devs
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["inserted"]["file"].as_str() == Some(file))
        .ok_or_else(|| {
            DriverError::Internal(format!("cannot find the block node of disk image '{file}'"))
        })?;
    layers(g, dev)
}

/// The layers of one `query-block` entry.
fn layers(g: &mut Guest, dev: &Value) -> Result<Vec<Layer>, DriverError> {
    let named = qmp(
        g,
        "query-named-block-nodes",
        Some(serde_json::json!({"flat": true})),
    )?;
    Ok(layers_from(dev, &named))
}

/// The layers of the `query-block` entry `dev`, their nodes found in `named`
/// (`query-named-block-nodes`).
pub(crate) fn layers_from(dev: &Value, named: &Value) -> Vec<Layer> {
    let ins = &dev["inserted"];
    let node_of = |file: &str| {
        named
            .as_array()
            .into_iter()
            .flatten()
            .find(|n| n["file"].as_str() == Some(file) && n["drv"].as_str() != Some("file"))
            .and_then(|n| n["node-name"].as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let mut out = vec![Layer {
        file: ins["file"].as_str().unwrap_or("").to_string(),
        format: ins["drv"].as_str().unwrap_or("raw").to_string(),
        node: ins["node-name"].as_str().unwrap_or("").to_string(),
    }];
    let mut img = &ins["image"]["backing-image"];
    // A chain cannot be longer than the nodes QEMU has open.
    let bound = named.as_array().map_or(0, Vec::len);
    while let Some(file) = img["filename"].as_str() {
        if out.len() > bound {
            break;
        }
        out.push(Layer {
            file: file.to_string(),
            format: img["format"].as_str().unwrap_or("raw").to_string(),
            node: node_of(file),
        });
        img = &img["backing-image"];
    }
    out
}

/// The index in `chain` of `name`: an image path or `dst[N]` (libvirt:
/// virStorageSourceChainLookup), at or below `from`.
pub(crate) fn lookup(
    chain: &[Layer],
    dst: &str,
    name: &str,
    from: usize,
) -> Result<usize, DriverError> {
    let by_index = name
        .strip_prefix(dst)
        .and_then(|r| r.strip_prefix('['))
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|n| n.parse::<usize>().ok());
    let found = match by_index {
        Some(i) => (i < chain.len()).then_some(i),
        None => chain.iter().position(|l| l.file == name),
    };
    match found {
        Some(i) if i >= from => Ok(i),
        _ if from > 0 => Err(DriverError::InvalidArg(format!(
            "could not find image '{name}' beneath '{}' in chain for '{}'",
            chain[from - 1].file,
            chain[0].file
        ))),
        _ => Err(DriverError::InvalidArg(format!(
            "could not find image '{name}' in chain for '{}'",
            chain[0].file
        ))),
    }
}

/// The `query-block` entry of `disk` with a medium in, by its device alias or its image.
pub(crate) fn device_of<'a>(devs: &'a Value, disk: &Disk) -> Option<&'a Value> {
    let alias = disk.info.alias.as_deref();
    let file = disk.source.as_ref().and_then(|s| s.file.as_deref());
    devs.as_array()
        .into_iter()
        .flatten()
        .find(|d| {
            let qdev = d["qdev"].as_str().unwrap_or("");
            alias.is_some_and(|a| qdev == a || qdev.split('/').any(|seg| seg == a))
                || (file.is_some() && d["inserted"]["file"].as_str() == file)
        })
        .filter(|d| d.get("inserted").is_some())
}

/// Make `disk`'s source and backing chain `chain` (libvirt: the live definition after
/// qemuBlockJobProcessEventCompleted*; a chain that ends says so with `<backingStore/>`).
pub(crate) fn write_chain(disk: &mut Disk, chain: &[Layer]) {
    let Some((top, below)) = chain.split_first() else {
        return;
    };
    if let Some(s) = disk.source.as_mut() {
        s.file = Some(top.file.clone());
    }
    if let Some(d) = disk.driver.as_mut() {
        d.dtype = Some(top.format.clone());
    }
    let mut store = BackingStore::default();
    for (i, l) in below.iter().enumerate().rev() {
        store = BackingStore {
            btype: Some("file".into()),
            index: Some(i as u32 + 1),
            format: Some(l.format.clone()),
            source: Some(crate::domain::devices::DiskSource {
                file: Some(l.file.clone()),
                ..Default::default()
            }),
            backing: Some(Box::new(store)),
            ..Default::default()
        };
    }
    disk.backing_store = Some(store);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Vec<Layer> {
        ["/t/top.qcow2", "/t/mid.qcow2", "/t/base.qcow2"]
            .iter()
            .enumerate()
            .map(|(i, f)| Layer {
                file: f.to_string(),
                format: "qcow2".into(),
                node: format!("n{i}"),
            })
            .collect()
    }

    #[test]
    fn lookup_by_path_and_index() {
        let c = chain();
        assert_eq!(lookup(&c, "vda", "/t/mid.qcow2", 0).unwrap(), 1);
        assert_eq!(lookup(&c, "vda", "vda[2]", 1).unwrap(), 2);
        assert_eq!(
            lookup(&c, "vda", "/t/top.qcow2", 1)
                .unwrap_err()
                .to_string(),
            "invalid argument: could not find image '/t/top.qcow2' beneath '/t/top.qcow2' in chain for '/t/top.qcow2'"
        );
        assert_eq!(
            lookup(&c, "vda", "/nope", 0).unwrap_err().to_string(),
            "invalid argument: could not find image '/nope' in chain for '/t/top.qcow2'"
        );
    }

    #[test]
    fn written_chain_ends_with_an_empty_store() {
        let mut d = Disk {
            source: Some(Default::default()),
            ..Default::default()
        };
        write_chain(&mut d, &chain()[1..]);
        assert_eq!(d.source.unwrap().file.as_deref(), Some("/t/mid.qcow2"));
        let b = d.backing_store.unwrap();
        assert_eq!(b.index, Some(1));
        assert_eq!(*b.backing.unwrap(), BackingStore::default());
    }
}
