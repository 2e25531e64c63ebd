//! Connections and guests: URIs, state and config dirs, processes. The only layer with side
//! effects besides probing.

pub mod dirs;
pub mod lock;
pub mod process;
pub mod runtime;
pub mod status;
pub mod uri;

pub use dirs::Dirs;
pub use uri::ConnectUri;

/// Errors of the driver layer.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("{0}")]
    Uri(String),
    #[error(transparent)]
    Caps(#[from] crate::capabilities::CapsError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A connection to the QEMU driver. There is no daemon: the connection is the driver, and
/// everything it knows lives in the directories its URI names.
#[derive(Debug)]
pub struct Connect {
    uri: ConnectUri,
    dirs: Dirs,
}

impl Connect {
    /// Open a connection. `None` picks the default URI (`VSH_DEFAULT_URI`, else system for
    /// root and session otherwise).
    pub fn open(uri: Option<&str>) -> Result<Connect, DriverError> {
        let uri = match uri {
            Some(u) => ConnectUri::parse(u)?,
            None => ConnectUri::default_for_process()?,
        };
        let dirs = Dirs::for_uri(&uri)?;
        Ok(Connect { uri, dirs })
    }

    /// The canonical URI of this connection (`virsh uri`).
    pub fn uri(&self) -> String {
        self.uri.to_string()
    }

    pub fn dirs(&self) -> &Dirs {
        &self.dirs
    }
}
