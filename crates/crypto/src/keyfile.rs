//! The key file: exactly 32 raw seed bytes, mode 0600, created atomically and durably.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{Error, SEED_LEN};

/// Outcome of [`create_seed_file`].
pub(crate) enum Created {
    /// Our seed is now durably at the path.
    Yes,
    /// A file appeared at the path before ours could be linked; ours was discarded.
    AlreadyExisted,
}

/// Reads the seed at `path`; a missing file is an error.
pub(crate) fn read_seed(path: &Path) -> Result<Zeroizing<[u8; SEED_LEN]>, Error> {
    let file = File::open(path).map_err(|e| io_error(path, "open", e))?;
    read_seed_from(path, file)
}

/// Reads the seed at `path`, or `None` when no file exists there.
pub(crate) fn read_seed_if_exists(path: &Path) -> Result<Option<Zeroizing<[u8; SEED_LEN]>>, Error> {
    match File::open(path) {
        Ok(file) => read_seed_from(path, file).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, "open", e)),
    }
}

/// Writes `seed` to a fresh mode-0600 temporary file next to `path`, fsyncs it, hard-links it to
/// `path` (which, unlike `rename`, never replaces a key another process created meanwhile),
/// removes the temporary name and fsyncs the directory.
pub(crate) fn create_seed_file(path: &Path, seed: &[u8; SEED_LEN]) -> Result<Created, Error> {
    create_private_file(path, seed)
}

/// Same as [`create_seed_file`] for any secret bytes (tokens).
pub(crate) fn create_private_file(path: &Path, seed: &[u8]) -> Result<Created, Error> {
    let dir = parent_dir(path);
    let tmp = temporary_path(path)?;
    let written = write_new_file(&tmp, seed);
    let linked = written.and_then(|()| match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(Created::Yes),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Created::AlreadyExisted),
        Err(e) => Err(io_error(path, "link into place", e)),
    });
    let removed = match fs::remove_file(&tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(&tmp, "remove temporary file", e)),
    };
    let created = linked?;
    removed?;
    File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| io_error(&dir, "fsync directory", e))?;
    Ok(created)
}

/// Reads at most 33 bytes into a zeroizing buffer (no growable buffer, so no stray copies) and
/// requires exactly 32.
fn read_seed_from(path: &Path, mut file: File) -> Result<Zeroizing<[u8; SEED_LEN]>, Error> {
    let meta = file.metadata().map_err(|e| io_error(path, "stat", e))?;
    if !meta.is_file() {
        return Err(Error::KeyFileNotRegular { path: path.to_owned() });
    }
    let mut buf = Zeroizing::new([0u8; SEED_LEN + 1]);
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(path, "read", e)),
        }
    }
    if len != SEED_LEN {
        return Err(Error::KeyFileFormat { path: path.to_owned(), len });
    }
    let mut seed = Zeroizing::new([0u8; SEED_LEN]);
    seed.copy_from_slice(&buf[..SEED_LEN]);
    Ok(seed)
}

/// Creates `tmp` (must not exist) with mode 0600, writes the secret and fsyncs. The caller removes
/// `tmp` afterwards, whether this succeeded or not.
fn write_new_file(tmp: &Path, seed: &[u8]) -> Result<(), Error> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| io_error(tmp, "create temporary file", e))?;
    file.write_all(seed).and_then(|()| file.sync_all()).map_err(|e| io_error(tmp, "write temporary file", e))
}

/// The directory holding `path` ("." for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `<dir>/.<name>.tmp-<16 random hex>`: unique, hidden, on the same filesystem as `path`.
fn temporary_path(path: &Path) -> Result<PathBuf, Error> {
    let Some(name) = path.file_name() else {
        let e = io::Error::new(io::ErrorKind::InvalidInput, "path has no file name");
        return Err(io_error(path, "create", e));
    };
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(Error::Rng)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", hex::encode(nonce)));
    Ok(parent_dir(path).join(tmp_name))
}

pub(crate) fn io_error(path: &Path, action: &'static str, source: io::Error) -> Error {
    Error::KeyFileIo { path: path.to_owned(), action, source }
}
