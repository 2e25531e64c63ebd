//! Host facts read from a configurable /proc and /sys root.
