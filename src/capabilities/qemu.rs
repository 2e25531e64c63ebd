//! What one QEMU binary is and can do, probed over QMP.
