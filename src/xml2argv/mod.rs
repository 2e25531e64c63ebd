//! Domain + capabilities + launch context → QEMU command line. Pure functions, no I/O.
