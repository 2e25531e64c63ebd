//! The closed vocabularies of the domain XML: every value libvirt 9.0's enums accept, per
//! attribute. Data only; [`super::parse`] says where each applies and with which message.
//!
//! Where libvirt's enum starts with an "unset" value (`default`, `none`) that the XML may not
//! name, the value is listed first and the call site refuses it (libvirt's NONZERO).

// libvirt: virDomainVirt
pub const VIRT_TYPES: &[&str] = &[
    "none",
    "qemu",
    "kqemu",
    "kvm",
    "xen",
    "lxc",
    "uml",
    "openvz",
    "test",
    "vmware",
    "hyperv",
    "vbox",
    "phyp",
    "parallels",
    "bhyve",
    "vz",
    "hvf",
];
// libvirt: virDomainOS
pub const OS_TYPES: &[&str] = &["hvm", "xen", "linux", "exe", "uml", "xenpvh"];
// libvirt: virArch
pub const ARCHES: &[&str] = &[
    "alpha",
    "armv6l",
    "armv7l",
    "armv7b",
    "aarch64",
    "cris",
    "i686",
    "ia64",
    "lm32",
    "loongarch64",
    "m68k",
    "microblaze",
    "microblazeel",
    "mips",
    "mipsel",
    "mips64",
    "mips64el",
    "openrisc",
    "parisc",
    "parisc64",
    "ppc",
    "ppcle",
    "ppc64",
    "ppc64le",
    "ppcemb",
    "riscv32",
    "riscv64",
    "s390",
    "s390x",
    "sh4",
    "sh4eb",
    "sparc",
    "sparc64",
    "unicore32",
    "x86_64",
    "xtensa",
    "xtensaeb",
];
// libvirt: virDomainBoot
pub const BOOT_DEVS: &[&str] = &["fd", "cdrom", "hd", "network"];
// libvirt: virDomainLoader (first is unset)
pub const LOADER_TYPES: &[&str] = &["none", "rom", "pflash"];
// libvirt: virDomainOsDefFirmware (first is unset)
pub const FIRMWARES: &[&str] = &["none", "bios", "efi"];
// libvirt: virDomainLifecycleAction
pub const LIFECYCLE_ACTIONS: &[&str] = &[
    "destroy",
    "restart",
    "rename-restart",
    "preserve",
    "coredump-destroy",
    "coredump-restart",
];
// libvirt: virDomainLockFailure
pub const LOCK_FAILURE_ACTIONS: &[&str] = &["default", "poweroff", "restart", "pause", "ignore"];
// libvirt: virTristateSwitch / virTristateBool (first is unset)
pub const SWITCH: &[&str] = &["default", "on", "off"];
pub const BOOL: &[&str] = &["default", "yes", "no"];

// libvirt: virCPUMode, virCPUMatch, virCPUCheck, virCPUFallback, virCPUFeaturePolicy
pub const CPU_MODES: &[&str] = &["custom", "host-model", "host-passthrough", "maximum"];
pub const CPU_MATCHES: &[&str] = &["exact", "minimum", "strict"];
pub const CPU_CHECKS: &[&str] = &["default", "none", "partial", "full"];
pub const CPU_FALLBACKS: &[&str] = &["allow", "forbid"];
pub const CPU_FEATURE_POLICIES: &[&str] = &["force", "require", "optional", "disable", "forbid"];
// libvirt: virCPUCacheMode, virCPUMaxPhysAddrMode
pub const CPU_CACHE_MODES: &[&str] = &["emulate", "passthrough", "disable"];
pub const CPU_MAXPHYSADDR_MODES: &[&str] = &["emulate", "passthrough"];
// libvirt: virDomainNumatuneMemMode, virDomainNumatunePlacement
pub const NUMATUNE_MODES: &[&str] = &["strict", "preferred", "interleave", "restrictive"];
pub const NUMATUNE_PLACEMENTS: &[&str] = &["default", "static", "auto"];
// libvirt: virDomainClockOffset
pub const CLOCK_OFFSETS: &[&str] = &["utc", "localtime", "variable", "timezone", "absolute"];
// libvirt: virDomainTimerName, virDomainTimerTickpolicy, virDomainTimerTrack, virDomainTimerMode
pub const TIMER_NAMES: &[&str] = &[
    "platform",
    "pit",
    "rtc",
    "hpet",
    "tsc",
    "kvmclock",
    "hypervclock",
    "armvtimer",
];
pub const TIMER_TICKPOLICIES: &[&str] = &["none", "delay", "catchup", "merge", "discard"];
pub const TIMER_TRACKS: &[&str] = &["none", "boot", "guest", "wall", "realtime"];
pub const TIMER_MODES: &[&str] = &["none", "auto", "native", "emulate", "paravirt", "smpsafe"];

// libvirt: virDomainFeature (as of 9.0)
pub const FEATURES: &[&str] = &[
    "acpi",
    "apic",
    "pae",
    "hap",
    "viridian",
    "privnet",
    "hyperv",
    "kvm",
    "pvspinlock",
    "capabilities",
    "pmu",
    "vmport",
    "gic",
    "smm",
    "ioapic",
    "hpt",
    "vmcoreinfo",
    "htm",
    "nested-hv",
    "msrs",
    "ccf-assist",
    "xen",
    "cfpc",
    "sbbc",
    "ibs",
    "tcg",
];
// libvirt: virDomainHyperv (as of 9.0: no emsr_bitmap, xmm_input)
pub const HYPERV_FEATURES: &[&str] = &[
    "relaxed",
    "vapic",
    "spinlocks",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "reset",
    "vendor_id",
    "frequencies",
    "reenlightenment",
    "tlbflush",
    "ipi",
    "evmcs",
    "avic",
];
// libvirt: virDomainHyperVMode (first is unset)
pub const HYPERV_MODES: &[&str] = &["none", "custom", "passthrough"];
// libvirt: virDomainKVM
pub const KVM_FEATURES: &[&str] = &[
    "hidden",
    "hint-dedicated",
    "poll-control",
    "pv-ipi",
    "dirty-ring",
];
// libvirt: virDomainIOAPIC, virDomainHPTResizing, virGICVersion, virDomainCFPC/SBBC/IBS,
// virDomainMsrsUnknown (first is unset)
pub const IOAPIC_DRIVERS: &[&str] = &["none", "qemu", "kvm"];
pub const HPT_RESIZINGS: &[&str] = &["none", "enabled", "disabled", "required"];
pub const GIC_VERSIONS: &[&str] = &["none", "host", "2", "3"];
pub const CFPC_VALUES: &[&str] = &["none", "broken", "workaround", "fixed"];
pub const SBBC_VALUES: &[&str] = &["none", "broken", "workaround", "fixed"];
pub const IBS_VALUES: &[&str] = &[
    "none",
    "broken",
    "workaround",
    "fixed-ibs",
    "fixed-ccd",
    "fixed-na",
];
pub const MSRS_UNKNOWN: &[&str] = &["ignore", "fault"];

// Devices.
// libvirt: virStorageType (first is unset)
pub const STORAGE_TYPES: &[&str] = &[
    "none",
    "file",
    "block",
    "dir",
    "network",
    "volume",
    "nvme",
    "vhostuser",
];
// libvirt: virDomainDiskDevice, virDomainDiskBus, virDomainDiskModel, virDomainDiskTray
pub const DISK_DEVICES: &[&str] = &["disk", "cdrom", "floppy", "lun"];
pub const DISK_BUSES: &[&str] = &[
    "none", "ide", "fdc", "scsi", "virtio", "xen", "usb", "uml", "sata", "sd",
];
pub const DISK_MODELS: &[&str] = &[
    "default",
    "virtio",
    "virtio-transitional",
    "virtio-non-transitional",
];
pub const DISK_TRAYS: &[&str] = &["closed", "open"];
// libvirt: virDomainSnapshotLocation, virDomainDeviceSGIO, virDomainStartupPolicy (first unset)
pub const SNAPSHOT_LOCATIONS: &[&str] = &["default", "no", "internal", "external", "manual"];
pub const SGIO_MODES: &[&str] = &["default", "filtered", "unfiltered"];
pub const STARTUP_POLICIES: &[&str] = &["default", "mandatory", "requisite", "optional"];
// libvirt: virDomainDiskCache, virDomainDiskErrorPolicy, virDomainDiskIo, virDomainDiskDiscard,
// virDomainDiskDetectZeroes
pub const DISK_CACHES: &[&str] = &[
    "default",
    "none",
    "writethrough",
    "writeback",
    "directsync",
    "unsafe",
];
pub const DISK_ERROR_POLICIES: &[&str] = &["default", "stop", "report", "ignore", "enospace"];
pub const DISK_IOS: &[&str] = &["default", "native", "threads", "io_uring"];
pub const DISK_DISCARDS: &[&str] = &["default", "unmap", "ignore"];
pub const DISK_DETECT_ZEROES: &[&str] = &["default", "off", "on", "unmap"];

// libvirt: virDomainController and its per-type model enums
pub const CONTROLLER_TYPES: &[&str] = &[
    "ide",
    "fdc",
    "scsi",
    "sata",
    "virtio-serial",
    "ccid",
    "usb",
    "pci",
    "xenbus",
    "isa",
];
pub const CONTROLLER_MODELS_SCSI: &[&str] = &[
    "auto",
    "buslogic",
    "lsilogic",
    "lsisas1068",
    "vmpvscsi",
    "ibmvscsi",
    "virtio-scsi",
    "lsisas1078",
    "virtio-transitional",
    "virtio-non-transitional",
    "ncr53c90",
    "dc390",
    "am53c974",
];
pub const CONTROLLER_MODELS_USB: &[&str] = &[
    "piix3-uhci",
    "piix4-uhci",
    "ehci",
    "ich9-ehci1",
    "ich9-uhci1",
    "ich9-uhci2",
    "ich9-uhci3",
    "vt82c686b-uhci",
    "pci-ohci",
    "nec-xhci",
    "qusb1",
    "qusb2",
    "qemu-xhci",
    "none",
];
pub const CONTROLLER_MODELS_PCI: &[&str] = &[
    "pci-root",
    "pcie-root",
    "pci-bridge",
    "dmi-to-pci-bridge",
    "pcie-to-pci-bridge",
    "pcie-root-port",
    "pcie-switch-upstream-port",
    "pcie-switch-downstream-port",
    "pci-expander-bus",
    "pcie-expander-bus",
];
pub const CONTROLLER_MODELS_IDE: &[&str] = &["piix3", "piix4", "ich6"];
pub const CONTROLLER_MODELS_VIRTIO_SERIAL: &[&str] =
    &["virtio", "virtio-transitional", "virtio-non-transitional"];
// libvirt: virDomainControllerPCIModelName (first is unset)
pub const PCI_MODEL_NAMES: &[&str] = &[
    "none",
    "pci-bridge",
    "i82801b11-bridge",
    "ioh3420",
    "x3130-upstream",
    "xio3130-downstream",
    "pxb",
    "pxb-pcie",
    "pcie-root-port",
    "spapr-pci-host-bridge",
    "pcie-pci-bridge",
];

// libvirt: virDomainFS, virDomainFSDriver, virDomainFSAccessMode, virDomainFSModel
pub const FS_TYPES: &[&str] = &[
    "mount", "block", "file", "template", "ram", "bind", "volume",
];
pub const FS_DRIVERS: &[&str] = &[
    "default", "path", "handle", "loop", "nbd", "ploop", "virtiofs",
];
pub const FS_ACCESS_MODES: &[&str] = &["", "passthrough", "mapped", "squash"];
pub const FS_MODELS: &[&str] = &[
    "default",
    "virtio",
    "virtio-transitional",
    "virtio-non-transitional",
];

// libvirt: virDomainNet
pub const NET_TYPES: &[&str] = &[
    "user",
    "ethernet",
    "vhostuser",
    "server",
    "client",
    "mcast",
    "network",
    "bridge",
    "internal",
    "direct",
    "hostdev",
    "udp",
    "vdpa",
];
// libvirt: NET_MODEL_CHARS (a model outside its enum is kept as a string of these)
pub const NET_MODEL_CHARS: &str =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
// libvirt: virDomainNetDriver, virDomainNetVirtioTxMode, virDomainNetBackend (first unset)
pub const NET_DRIVERS: &[&str] = &["default", "qemu", "vhost"];
pub const NET_TXMODES: &[&str] = &["default", "iothread", "timer"];
pub const NET_BACKENDS: &[&str] = &["default", "passt"];

// libvirt: virDomainChr
pub const CHR_TYPES: &[&str] = &[
    "null",
    "vc",
    "pty",
    "dev",
    "file",
    "pipe",
    "stdio",
    "udp",
    "tcp",
    "unix",
    "spicevmc",
    "spiceport",
    "nmdm",
    "qemu-vdagent",
    "dbus",
];
// libvirt: virDomainChrSerialTarget, virDomainChrChannelTarget, virDomainChrConsoleTarget,
// virDomainChrSerialTargetModel (first is unset)
pub const SERIAL_TARGETS: &[&str] = &[
    "none",
    "isa-serial",
    "usb-serial",
    "pci-serial",
    "spapr-vio-serial",
    "system-serial",
    "sclp-serial",
    "isa-debug",
];
pub const CHANNEL_TARGETS: &[&str] = &["none", "guestfwd", "virtio", "xen"];
pub const CONSOLE_TARGETS: &[&str] = &[
    "none", "serial", "xen", "uml", "virtio", "lxc", "openvz", "sclp", "sclplm",
];
pub const SERIAL_TARGET_MODELS: &[&str] = &[
    "none",
    "isa-serial",
    "usb-serial",
    "pci-serial",
    "spapr-vty",
    "pl011",
    "sclpconsole",
    "sclplmconsole",
    "16550a",
    "isa-debugcon",
];

// libvirt: virDomainInput, virDomainInputBus, virDomainInputModel (first two: unset)
pub const INPUT_TYPES: &[&str] = &["mouse", "tablet", "keyboard", "passthrough", "evdev"];
pub const INPUT_BUSES: &[&str] = &[
    "default",
    "ps2",
    "usb",
    "xen",
    "parallels",
    "virtio",
    "none",
];
pub const INPUT_MODELS: &[&str] = &[
    "default",
    "virtio",
    "virtio-transitional",
    "virtio-non-transitional",
];
// libvirt: virDomainGraphics, virDomainGraphicsListen
pub const GRAPHICS_TYPES: &[&str] = &[
    "sdl",
    "vnc",
    "rdp",
    "desktop",
    "spice",
    "egl-headless",
    "dbus",
];
pub const GRAPHICS_LISTEN_TYPES: &[&str] = &["none", "address", "network", "socket"];
// libvirt: virDomainVideo (first is unset), virDomainVideoBackend, virDomainVideoVGAConf
pub const VIDEO_MODELS: &[&str] = &[
    "default",
    "vga",
    "cirrus",
    "vmvga",
    "xen",
    "vbox",
    "qxl",
    "parallels",
    "virtio",
    "gop",
    "none",
    "bochs",
    "ramfb",
];
pub const VIDEO_BACKENDS: &[&str] = &["default", "qemu", "vhostuser"];
pub const VIDEO_VGACONFS: &[&str] = &["io", "on", "off"];
// libvirt: virDomainSoundModel, virDomainAudioType
pub const SOUND_MODELS: &[&str] = &[
    "sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "ich7",
];
pub const AUDIO_TYPES: &[&str] = &[
    "none",
    "alsa",
    "coreaudio",
    "jack",
    "oss",
    "pulseaudio",
    "sdl",
    "spice",
    "file",
    "dbus",
];
// libvirt: virDomainWatchdogModel, virDomainWatchdogAction
pub const WATCHDOG_MODELS: &[&str] = &["i6300esb", "ib700", "diag288"];
pub const WATCHDOG_ACTIONS: &[&str] = &[
    "reset",
    "shutdown",
    "poweroff",
    "pause",
    "dump",
    "none",
    "inject-nmi",
];
// libvirt: virDomainMemballoonModel
pub const MEMBALLOON_MODELS: &[&str] = &[
    "virtio",
    "xen",
    "none",
    "virtio-transitional",
    "virtio-non-transitional",
];
// libvirt: virDomainRNGModel, virDomainRNGBackend
pub const RNG_MODELS: &[&str] = &["virtio", "virtio-transitional", "virtio-non-transitional"];
pub const RNG_BACKENDS: &[&str] = &["random", "egd", "builtin"];
// libvirt: virDomainTPMModel, virDomainTPMBackend, virDomainTPMVersion
pub const TPM_MODELS: &[&str] = &[
    "default",
    "tpm-tis",
    "tpm-crb",
    "tpm-spapr",
    "spapr-tpm-proxy",
];
pub const TPM_BACKENDS: &[&str] = &["passthrough", "emulator", "external"];
pub const TPM_VERSIONS: &[&str] = &["default", "1.2", "2.0"];
// libvirt: virDomainMemoryModel (first is unset), virDomainMemoryAccess
pub const MEMORY_MODELS: &[&str] = &["", "dimm", "nvdimm", "virtio-pmem", "virtio-mem", "sgx-epc"];
pub const MEMORY_ACCESS: &[&str] = &["default", "shared", "private"];
// libvirt: virDomainIOMMUModel, virDomainPanicModel, virDomainVsockModel, virDomainShmemModel
pub const IOMMU_MODELS: &[&str] = &["intel", "smmuv3", "virtio"];
pub const PANIC_MODELS: &[&str] = &["default", "isa", "pseries", "hyperv", "s390"];
pub const VSOCK_MODELS: &[&str] = &[
    "default",
    "virtio",
    "virtio-transitional",
    "virtio-non-transitional",
];
pub const SHMEM_MODELS: &[&str] = &["ivshmem", "ivshmem-plain", "ivshmem-doorbell"];
// libvirt: virDomainHostdevMode, virDomainHostdevSubsys, virDomainHostdevCaps
pub const HOSTDEV_MODES: &[&str] = &["subsystem", "capabilities"];
pub const HOSTDEV_SUBSYS_TYPES: &[&str] = &["usb", "pci", "scsi", "scsi_host", "mdev"];
pub const HOSTDEV_CAPS_TYPES: &[&str] = &["storage", "misc", "net"];
// libvirt: virDomainSmartcard, virDomainHub, virDomainRedirdevBus
pub const SMARTCARD_MODES: &[&str] = &["host", "host-certificates", "passthrough"];
pub const HUB_TYPES: &[&str] = &["usb"];
pub const REDIRDEV_BUSES: &[&str] = &["usb"];
