//! Which QEMU fact sets which libvirt capability flag.
//!
//! Flags use libvirt 9.0.0's names (the `<flag name=..>` vocabulary of its caps cache), because
//! other layers and test data speak that vocabulary. The tables pair a fact QEMU reports
//! (a QOM type, a QMP command, a schema path, a device property, ...) with the flag it implies.

/// QMP commands (from `query-commands`) → flag.
pub const COMMANDS: &[(&str, &str)] = &[
    ("query-vnc", "vnc"),
    ("rtc-reset-reinjection", "rtc-reset-reinjection"),
    ("query-hotpluggable-cpus", "query-hotpluggable-cpus"),
    ("query-cpu-model-expansion", "query-cpu-model-expansion"),
    ("query-cpu-definitions", "query-cpu-definitions"),
    ("query-cpu-model-baseline", "query-cpu-model-baseline"),
    ("query-cpu-model-comparison", "query-cpu-model-comparison"),
    ("block-export-add", "block-export-add"),
    ("blockdev-reopen", "blockdev-reopen"),
    ("set-action", "set-action"),
    ("query-dirty-rate", "query-dirty-rate"),
    ("sev-inject-launch-secret", "sev-inject-launch-secret"),
    ("calc-dirty-rate", "calc-dirty-rate"),
    ("query-stats", "query-stats"),
    ("query-stats-schemas", "query-stats-schemas"),
];

/// Migration capabilities (from `query-migrate-capabilities`) → flag.
pub const MIGRATION: &[(&str, &str)] = &[("rdma-pin-all", "migrate-rdma")];

/// QOM types (from `qom-list-types`) → flag.
pub const OBJECT_TYPES: &[(&str, &str)] = &[
    ("hda-duplex", "hda-duplex"),
    ("hda-micro", "hda-micro"),
    ("ccid-card-emulated", "ccid-emulated"),
    ("ccid-card-passthru", "ccid-passthru"),
    ("piix3-usb-uhci", "piix3-usb-uhci"),
    ("piix4-usb-uhci", "piix4-usb-uhci"),
    ("usb-ehci", "usb-ehci"),
    ("ich9-usb-ehci1", "ich9-usb-ehci1"),
    ("vt82c686b-usb-uhci", "vt82c686b-usb-uhci"),
    ("pci-ohci", "pci-ohci"),
    ("nec-usb-xhci", "nec-usb-xhci"),
    ("usb-redir", "usb-redir"),
    ("usb-hub", "usb-hub"),
    ("ich9-ahci", "ich9-ahci"),
    ("virtio-blk-ccw", "virtio-ccw"),
    ("sclpconsole", "s390-sclp"),
    ("lsi53c895a", "lsi"),
    ("virtio-scsi-pci", "virtio-scsi-pci"),
    ("virtio-scsi-ccw", "virtio-scsi-pci"),
    ("virtio-scsi-device", "virtio-scsi-pci"),
    ("megasas", "megasas"),
    ("qxl", "qxl"),
    ("scsi-block", "scsi-block"),
    ("VGA", "VGA"),
    ("cirrus-vga", "cirrus-vga"),
    ("vmware-svga", "vmware-svga"),
    ("usb-serial", "usb-serial"),
    ("virtio-rng-pci", "virtio-rng"),
    ("virtio-rng-ccw", "virtio-rng"),
    ("virtio-rng-device", "virtio-rng"),
    ("rng-random", "rng-random"),
    ("rng-egd", "rng-egd"),
    ("spapr-nvram", "nvram"),
    ("pci-bridge", "pci-bridge"),
    ("vfio-pci", "vfio-pci"),
    ("i82801b11-bridge", "dmi-to-pci-bridge"),
    ("usb-storage", "usb-storage"),
    ("virtio-mmio", "virtio-mmio"),
    ("ich9-intel-hda", "ich9-intel-hda"),
    ("pvpanic", "pvpanic"),
    ("usb-kbd", "usb-kbd"),
    ("usb-audio", "usb-audio"),
    ("iothread", "iothread"),
    ("pc-dimm", "pc-dimm"),
    ("pci-serial", "pci-serial"),
    ("gpex-pcihost", "gpex-pcihost"),
    ("ioh3420", "ioh3420"),
    ("x3130-upstream", "x3130-upstream"),
    ("xio3130-downstream", "xio3130-downstream"),
    ("rtl8139", "rtl8139"),
    ("e1000", "e1000"),
    ("virtio-net-pci", "virtio-net"),
    ("virtio-net-ccw", "virtio-net"),
    ("virtio-net-device", "virtio-net"),
    ("virtio-gpu-pci", "virtio-gpu"),
    ("virtio-gpu-device", "virtio-gpu"),
    ("virtio-vga", "virtio-vga"),
    ("virtio-keyboard-device", "virtio-keyboard"),
    ("virtio-keyboard-pci", "virtio-keyboard"),
    ("virtio-mouse-device", "virtio-mouse"),
    ("virtio-mouse-pci", "virtio-mouse"),
    ("virtio-tablet-device", "virtio-tablet"),
    ("virtio-tablet-pci", "virtio-tablet"),
    ("virtio-input-host-device", "virtio-input-host"),
    ("virtio-input-host-pci", "virtio-input-host"),
    ("mptsas1068", "mptsas1068"),
    ("pxb", "pxb"),
    ("pxb-pcie", "pxb-pcie"),
    ("intel-iommu", "intel-iommu"),
    ("ivshmem-plain", "ivshmem-plain"),
    ("ivshmem-doorbell", "ivshmem-doorbell"),
    ("vhost-scsi", "vhost-scsi"),
    ("nvdimm", "nvdimm"),
    ("pcie-root-port", "pcie-root-port"),
    ("qemu-xhci", "qemu-xhci"),
    ("hvf-accel", "hvf"),
    ("spapr-pci-host-bridge", "spapr-pci-host-bridge"),
    ("vmcoreinfo", "vmcoreinfo"),
    ("spapr-vty", "spapr-vty"),
    ("sclplmconsole", "sclplmconsole"),
    ("isa-serial", "isa-serial"),
    ("pl011", "pl011"),
    ("virtio-gpu-ccw", "virtio-gpu-ccw"),
    ("virtio-keyboard-ccw", "virtio-keyboard-ccw"),
    ("virtio-mouse-ccw", "virtio-mouse-ccw"),
    ("virtio-tablet-ccw", "virtio-tablet-ccw"),
    ("pcie-pci-bridge", "pcie-pci-bridge"),
    ("pr-manager-helper", "pr-manager-helper"),
    ("vfio-ccw", "vfio-ccw"),
    ("hda-output", "hda-output"),
    ("vmgenid", "vmgenid"),
    ("vhost-vsock-device", "vhost-vsock"),
    ("mch", "mch"),
    ("sev-guest", "sev-guest"),
    ("vfio-ap", "vfio-ap"),
    ("zpci", "zpci"),
    ("memory-backend-memfd", "memory-backend-memfd"),
    ("virtio-blk-pci-transitional", "virtio-pci-non-transitional"),
    (
        "virtio-blk-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    ("virtio-net-pci-transitional", "virtio-pci-non-transitional"),
    (
        "virtio-net-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    ("vhost-scsi-pci-transitional", "virtio-pci-non-transitional"),
    (
        "vhost-scsi-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    ("virtio-rng-pci-transitional", "virtio-pci-non-transitional"),
    (
        "virtio-rng-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    ("virtio-9p-pci-transitional", "virtio-pci-non-transitional"),
    (
        "virtio-9p-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    (
        "virtio-balloon-pci-transitional",
        "virtio-pci-non-transitional",
    ),
    (
        "virtio-balloon-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    (
        "vhost-vsock-pci-transitional",
        "virtio-pci-non-transitional",
    ),
    (
        "vhost-vsock-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    (
        "virtio-scsi-pci-transitional",
        "virtio-pci-non-transitional",
    ),
    (
        "virtio-scsi-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    (
        "virtio-serial-pci-transitional",
        "virtio-pci-non-transitional",
    ),
    (
        "virtio-serial-pci-non-transitional",
        "virtio-pci-non-transitional",
    ),
    ("max-x86_64-cpu", "x86-max-cpu"),
    ("bochs-display", "bochs-display"),
    ("dbus-vmstate", "dbus-vmstate"),
    ("vhost-user-gpu", "vhost-user-gpu"),
    ("vhost-user-vga", "vhost-user-vga"),
    ("ramfb", "ramfb"),
    ("max-arm-cpu", "arm-max-cpu"),
    ("i8042", "i8042"),
    ("rng-builtin", "rng-builtin"),
    ("tpm-spapr", "tpm-spapr"),
    ("vhost-user-fs-device", "vhost-user-fs"),
    ("tcg-accel", "tcg"),
    ("pvscsi", "pvscsi"),
    ("spapr-tpm-proxy", "spapr-tpm-proxy"),
    ("vmport", "machine-vmport-opt"),
    // `esp` is deliberately absent: most binaries list it as a dependency of PCI SCSI
    // controllers although only some machines have it built in (see the arch rule).
    ("dc390", "dc390"),
    ("am53c974", "am53c974"),
    ("virtio-pmem-pci", "virtio-pmem-pci"),
    ("vhost-user-blk", "vhost-user-blk"),
    ("input-linux", "input-linux"),
    ("virtio-gpu-gl-pci", "virtio-gpu-gl-pci"),
    ("virtio-vga-gl", "virtio-vga-gl"),
    ("s390-pv-guest", "s390-pv-guest"),
    ("virtio-mem-pci", "virtio-mem-pci"),
    ("virtio-iommu-pci", "virtio-iommu-pci"),
    ("sgx-epc", "sgx-epc"),
    ("thread-context", "thread-context"),
];

/// A device property that implies a flag.
pub struct Prop {
    pub name: &'static str,
    pub flag: &'static str,
    /// For `virtio-blk.scsi`: also flag when the property's default is off.
    pub default_off_flag: Option<&'static str>,
}

const fn p(name: &'static str, flag: &'static str) -> Prop {
    Prop {
        name,
        flag,
        default_off_flag: None,
    }
}

const BALLOON: &[Prop] = &[
    p("deflate-on-oom", "virtio-balloon-pci.deflate-on-oom"),
    p("free-page-reporting", "virtio-balloon.free-page-reporting"),
    p("acpi-index", "acpi-index"),
];
const BLK: &[Prop] = &[
    Prop {
        name: "scsi",
        flag: "virtio-blk-pci.scsi",
        default_off_flag: Some("virtio-blk-pci.scsi.default.disabled"),
    },
    p("queue-size", "virtio-blk.queue-size"),
    p("acpi-index", "acpi-index"),
];
const NET: &[Prop] = &[p("acpi-index", "acpi-index"), p("rss", "virtio-net.rss")];
const SCSI: &[Prop] = &[p("acpi-index", "acpi-index")];
const VFIO_PCI: &[Prop] = &[p("display", "vfio-pci.display")];
const SCSI_DISK: &[Prop] = &[
    p("channel", "scsi-disk.channel"),
    p("wwn", "scsi-disk.wwn"),
    p("rotation_rate", "rotation-rate"),
];
const IDE: &[Prop] = &[p("wwn", "ide-drive.wwn")];
const PIIX4: &[Prop] = &[
    p("disable_s3", "disable-s3"),
    p("disable_s4", "disable-s4"),
    p("acpi-root-pci-hotplug", "piix4.acpi-root-pci-hotplug"),
];
const USB_REDIR: &[Prop] = &[p("filter", "usb-redir.filter")];
const USB_STORAGE: &[Prop] = &[p("removable", "usb-storage.removable")];
const KVM_PIT: &[Prop] = &[p("lost_tick_policy", "kvm-pit-lost-tick-policy")];
const VGA: &[Prop] = &[p("vgamem_mb", "VGA.vgamem_mb")];
const VMWARE: &[Prop] = &[p("vgamem_mb", "vmware-svga.vgamem_mb")];
const QXL: &[Prop] = &[
    p("vgamem_mb", "qxl.vgamem_mb"),
    p("vram64_size_mb", "qxl.vram64_size_mb"),
];
const GPU: &[Prop] = &[
    p("virgl", "virtio-gpu.virgl"),
    p("acpi-index", "acpi-index"),
];
const ICH9: &[Prop] = &[
    p("disable_s3", "ich9-disable-s3"),
    p("disable_s4", "ich9-disable-s4"),
];
const INTEL_IOMMU: &[Prop] = &[
    p("intremap", "intel-iommu.intremap"),
    p("caching-mode", "intel-iommu.caching-mode"),
    p("eim", "intel-iommu.eim"),
    p("device-iotlb", "intel-iommu.device-iotlb"),
    p("aw-bits", "intel-iommu.aw-bits"),
];
const SPAPR_PHB: &[Prop] = &[p("numa_node", "spapr-pci-host-bridge.numa_node")];
const MCH: &[Prop] = &[p("extended-tseg-mbytes", "mch.extended-tseg-mbytes")];
const NVDIMM: &[Prop] = &[p("unarmed", "nvdimm.unarmed")];
const ROOT_PORT: &[Prop] = &[p("hotplug", "pcie-root-port.hotplug")];
const USB_HOST: &[Prop] = &[
    p("hostdevice", "usb-host.hostdevice"),
    p("guest-resets-all", "usb-host.guest-resets-all"),
];
const VHOST_USER_FS: &[Prop] = &[p("bootindex", "vhost-user-fs.bootindex")];
const VIRTIO_MEM: &[Prop] = &[p("prealloc", "virtio-mem-pci.prealloc")];
const VIRTIO_IOMMU: &[Prop] = &[p("boot-bypass", "virtio-iommu.boot-bypass")];

/// Devices whose properties are listed (`device-list-properties`), in probe order, with the
/// flag that must already be set for the device to be asked about (`None`: always asked).
pub const DEVICE_PROPS: &[(&str, Option<&str>, &[Prop])] = &[
    ("virtio-blk-pci", None, BLK),
    ("virtio-net-pci", Some("virtio-net"), NET),
    ("virtio-scsi-pci", Some("virtio-scsi-pci"), SCSI),
    ("virtio-blk-ccw", Some("virtio-ccw"), BLK),
    ("virtio-net-ccw", Some("virtio-net"), NET),
    ("virtio-scsi-ccw", Some("virtio-scsi-pci"), SCSI),
    ("vfio-pci", Some("vfio-pci"), VFIO_PCI),
    ("scsi-hd", None, SCSI_DISK),
    ("ide-hd", None, IDE),
    ("PIIX4_PM", None, PIIX4),
    ("usb-redir", Some("usb-redir"), USB_REDIR),
    ("usb-storage", Some("usb-storage"), USB_STORAGE),
    ("kvm-pit", None, KVM_PIT),
    ("VGA", Some("VGA"), VGA),
    ("vmware-svga", Some("vmware-svga"), VMWARE),
    ("qxl", Some("qxl"), QXL),
    ("virtio-gpu-pci", Some("virtio-gpu"), GPU),
    ("virtio-gpu-device", Some("virtio-gpu"), GPU),
    ("ICH9-LPC", None, ICH9),
    ("virtio-balloon-pci", None, BALLOON),
    ("virtio-balloon-ccw", None, BALLOON),
    ("virtio-balloon-device", None, BALLOON),
    ("intel-iommu", Some("intel-iommu"), INTEL_IOMMU),
    (
        "spapr-pci-host-bridge",
        Some("spapr-pci-host-bridge"),
        SPAPR_PHB,
    ),
    ("virtio-gpu-ccw", Some("virtio-gpu-ccw"), GPU),
    ("mch", Some("mch"), MCH),
    ("nvdimm", Some("nvdimm"), NVDIMM),
    ("pcie-root-port", Some("pcie-root-port"), ROOT_PORT),
    ("usb-host", None, USB_HOST),
    ("vhost-user-fs-device", Some("vhost-user-fs"), VHOST_USER_FS),
    ("virtio-mem-pci", Some("virtio-mem-pci"), VIRTIO_MEM),
    ("virtio-iommu-pci", Some("virtio-iommu-pci"), VIRTIO_IOMMU),
];

const MEMORY_FILE: &[(&str, &str)] = &[
    ("pmem", "memory-backend-file.pmem"),
    (
        "x-use-canonical-path-for-ramblock-id",
        "memory-backend-file.x-use-canonical-path-for-ramblock-id",
    ),
    ("reserve", "memory-backend-file.reserve"),
    ("prealloc-threads", "memory-backend-file.prealloc-threads"),
];
const MEMFD: &[(&str, &str)] = &[("hugetlb", "memory-backend-memfd.hugetlb")];
const MAX_CPU: &[(&str, &str)] = &[
    ("unavailable-features", "cpu-unavailable-features"),
    ("kvm-no-adjvtime", "cpu.kvm-no-adjvtime"),
    ("migratable", "cpu.migratable"),
];

/// Property name → flag.
pub type NamedFlags = &'static [(&'static str, &'static str)];

/// QOM objects whose properties are listed (`qom-list-properties`), in probe order, with the
/// flag that must already be set for the object to be asked about.
pub const OBJECT_PROPS: &[(&str, Option<&str>, NamedFlags)] = &[
    ("memory-backend-file", None, MEMORY_FILE),
    ("memory-backend-memfd", Some("memory-backend-memfd"), MEMFD),
    ("max-x86_64-cpu", Some("x86-max-cpu"), MAX_CPU),
    ("max-arm-cpu", Some("arm-max-cpu"), MAX_CPU),
];

const PSERIES: &[(&str, &str)] = &[
    (
        "cap-hpt-max-page-size",
        "machine.pseries.cap-hpt-max-page-size",
    ),
    ("cap-htm", "machine.pseries.cap-htm"),
    ("cap-nested-hv", "machine.pseries.cap-nested-hv"),
    ("cap-ccf-assist", "machine.pseries.cap-ccf-assist"),
    ("cap-cfpc", "machine.pseries.cap-cfpc"),
    ("cap-sbbc", "machine.pseries.cap-sbbc"),
    ("cap-ibs", "machine.pseries.cap-ibs"),
];
const VIRT: &[(&str, &str)] = &[("iommu", "machine.virt.iommu")];
const GENERIC: &[(&str, &str)] = &[("confidential-guest-support", "confidential-guest-support")];

/// Machine types (by name or alias) whose QOM properties are listed, in probe order.
/// `none` is always asked; the others only when the binary has that machine.
pub const MACHINE_PROPS: &[(&str, &[(&str, &str)])] =
    &[("pseries", PSERIES), ("virt", VIRT), ("none", GENERIC)];

/// Schema path queries (see [`super::schema`]) → flag.
pub const SCHEMA_QUERIES: &[(&str, &str)] = &[
    ("blockdev-add/arg-type/+vxhs", "vxhs"),
    (
        "blockdev-add/arg-type/+file/drop-cache",
        "migration-file-drop-cache",
    ),
    ("blockdev-add/arg-type/+nvme", "drive-nvme"),
    ("blockdev-add/arg-type/+file/aio/^io_uring", "aio.io_uring"),
    ("blockdev-add/arg-type/+rbd/encrypt", "rbd-encryption"),
    (
        "blockdev-add/arg-type/+nbd/tls-hostname",
        "blockdev.nbd.tls-hostname",
    ),
    (
        "blockdev-snapshot/$allow-write-only-overlay",
        "blockdev-snapshot.allow-write-only-overlay",
    ),
    (
        "chardev-add/arg-type/backend/+socket/data/reconnect",
        "chardev-reconnect",
    ),
    ("device_add/$json-cli-hotplug", "device.json+hotplug"),
    (
        "migrate-set-parameters/arg-type/block-bitmap-mapping/bitmaps/transform",
        "migration-param.block-bitmap-mapping",
    ),
    ("nbd-server-start/arg-type/tls-creds", "nbd-tls"),
    ("nbd-server-add/arg-type/bitmap", "nbd-bitmap"),
    ("netdev_add/arg-type/+stream", "netdev.stream"),
    ("netdev_add/arg-type/+vhost-vdpa", "netdev.vhost-vdpa"),
    // JSON syntax for -netdev arrived together with the 'dgram' backend.
    ("netdev_add/arg-type/type/^dgram", "netdev.json"),
    ("object-add/arg-type/qom-type/^secret", "object.qapified"),
    (
        "query-display-options/ret-type/+egl-headless/rendernode",
        "egl-headless.rendernode",
    ),
    ("query-display-options/ret-type/+sdl", "sdl"),
    (
        "query-display-options/ret-type/+egl-headless",
        "egl-headless",
    ),
    (
        "query-iothreads/ret-type/poll-max-ns",
        "iothread.poll-max-ns",
    ),
    ("query-hotpluggable-cpus/ret-type/props/die-id", "smp-dies"),
    (
        "query-named-block-nodes/arg-type/flat",
        "query-named-block-nodes.flat",
    ),
    ("screendump/arg-type/device", "screendump_device"),
    ("set-numa-node/arg-type/+hmat-lb", "numa.hmat"),
    (
        "object-add/arg-type/+sev-guest/kernel-hashes",
        "sev-guest-kernel-hashes",
    ),
    ("calc-dirty-rate/arg-type/mode", "dirtyrate-param.mode"),
    (
        "chardev-add/arg-type/backend/+qemu-vdagent",
        "chardev.qemu-vdagent",
    ),
    ("query-display-options/ret-type/+dbus", "display-dbus"),
    (
        "object-add/arg-type/+iothread/thread-pool-max",
        "iothread.thread-pool-max",
    ),
    (
        "query-migrate/ret-type/blocked-reasons",
        "migration.blocked-reasons",
    ),
    ("screendump/arg-type/format/^png", "screenshot-format-png"),
];

/// `query-command-line-options`: (option, parameter or `None` for the option itself) → flag.
pub const COMMAND_LINE: &[(&str, Option<&str>, &str)] = &[
    ("fsdev", Some("multidevs"), "fsdev.multidevs"),
    ("machine", Some("hpet"), "machine-hpet"),
    ("sandbox", None, "seccomp-sandbox"),
    ("spice", None, "spice"),
    ("spice", Some("gl"), "spice-gl"),
    ("spice", Some("rendernode"), "spice-rendernode"),
    ("vnc", Some("power-control"), "vnc-power-control"),
];

/// `query-tpm-models` values → flag.
pub const TPM_MODELS: &[(&str, &str)] = &[
    ("tpm-tis", "tpm-tis"),
    ("tpm-crb", "tpm-crb"),
    ("tpm-spapr", "tpm-spapr"),
];

/// `query-tpm-types` values → flag.
pub const TPM_TYPES: &[(&str, &str)] = &[
    ("passthrough", "tpm-passthrough"),
    ("emulator", "tpm-emulator"),
];
