//! Uploads on disk. All of it is blocking filesystem work, run on tokio's
//! blocking pool by the callers.
//!
//! Layout, inside the configured folder:
//!
//! ```text
//! folder/.tus/<id>        the bytes received so far (the offset is its length)
//! folder/.tus/<id>.info   the sidecar: length, metadata, complete (see sidecar.rs)
//! folder/<id>             the finished upload, moved here when its last byte lands
//! ```
//!
//! `.tus` is a hidden folder, so a static mount of `folder` never serves a partial
//! upload. Paths are only ever built from a validated [`UploadId`], so nothing is
//! read or written outside `folder`.
//!
//! A PATCH holds an exclusive `flock` on the data file while it writes: a second
//! writer — in this process or another worker sharing the folder — is told the
//! upload is busy (423) instead of interleaving bytes, and a killed process
//! releases its lock with its file descriptors.

use super::id::UploadId;
use super::sidecar::UploadInfo;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const PARTIAL_DIR: &str = ".tus";

pub struct Store {
    folder: PathBuf,
    partials: PathBuf,
    /// `fdatasync` each PATCH before acknowledging it (the acknowledged offset
    /// survives a power cut), not only on completion.
    pub sync_each_patch: bool,
}

/// Why an upload cannot be used.
#[derive(Debug)]
pub enum Unavailable {
    /// No such upload (never created, terminated, or removed after expiry).
    NotFound,
    /// It expired just now and has been removed: 410 Gone.
    Expired,
    /// Another request holds it: 423 Locked.
    Busy,
    Io(io::Error),
}

impl From<io::Error> for Unavailable {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            Unavailable::NotFound
        } else {
            Unavailable::Io(e)
        }
    }
}

/// An upload in progress, locked for this request until dropped.
pub struct Locked {
    pub id: UploadId,
    /// Shared with the writes in flight on the blocking pool; the lock goes with
    /// the last reference.
    pub file: Arc<File>,
    pub offset: u64,
    pub info: UploadInfo,
}

/// What `HEAD` reports, read without taking the lock.
pub struct Status {
    pub info: UploadInfo,
    /// Bytes received; the length once complete.
    pub offset: u64,
    /// Last write, from which the expiry is counted; `None` once complete.
    pub modified: Option<SystemTime>,
}

impl Store {
    pub fn new(folder: PathBuf, sync_each_patch: bool) -> Self {
        let partials = folder.join(PARTIAL_DIR);
        Store {
            folder,
            partials,
            sync_each_patch,
        }
    }

    pub fn final_path(&self, id: &UploadId) -> PathBuf {
        self.folder.join(id.as_str())
    }

    fn data_path(&self, id: &UploadId) -> PathBuf {
        self.partials.join(id.as_str())
    }

    fn info_path(&self, id: &UploadId) -> PathBuf {
        self.partials.join(format!("{id}.info"))
    }

    /// Creates an empty upload and returns it locked. The data file comes first:
    /// a crash before the sidecar is written leaves an orphan the sweep removes,
    /// never a sidecar that promises bytes.
    pub fn create(&self, id: UploadId, info: UploadInfo) -> io::Result<Locked> {
        fs::create_dir_all(&self.partials)?;
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.data_path(&id))?;
        if !try_lock(&file)? {
            return Err(io::Error::other(
                "a new upload file was locked by someone else",
            ));
        }
        self.write_info(&id, &info)?;
        Ok(Locked {
            id,
            file: Arc::new(file),
            offset: 0,
            info,
        })
    }

    /// Opens an upload in progress for writing, locked. A complete upload is
    /// returned as its info (`Err(Ok(info))`), for the caller to answer from.
    pub fn lock(
        &self,
        id: &UploadId,
        expiration: Option<Duration>,
    ) -> Result<Locked, Result<UploadInfo, Unavailable>> {
        let info = self.read_info(id).map_err(Err)?;
        if info.complete {
            return Err(Ok(info));
        }
        let file = match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(self.data_path(id))
        {
            Ok(f) => f,
            Err(e) => return Err(self.recover_complete(id, info, e)),
        };
        if !try_lock(&file).map_err(|e| Err(e.into()))? {
            return Err(Err(Unavailable::Busy));
        }
        let meta = file.metadata().map_err(|e| Err(e.into()))?;
        // While we waited for the lock the upload may have been finished (moved
        // into place) or terminated: then this descriptor is no longer the upload's
        // data file, and what the sidecar now says decides.
        let still_there = fs::symlink_metadata(self.data_path(id))
            .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev());
        if !still_there {
            return match self.read_info(id) {
                Ok(info) if info.complete => Err(Ok(info)),
                Ok(_) | Err(Unavailable::NotFound) => Err(Err(Unavailable::NotFound)),
                Err(e) => Err(Err(e)),
            };
        }
        let modified = meta.modified().map_err(|e| Err(e.into()))?;
        if is_expired(modified, expiration) {
            self.remove_files(id);
            return Err(Err(Unavailable::Expired));
        }
        Ok(Locked {
            id: id.clone(),
            file: Arc::new(file),
            offset: meta.len(),
            info,
        })
    }

    /// The data file is gone but the sidecar said incomplete: the upload was
    /// moved into place a moment ago (by a request finishing it now, or by one
    /// that died before marking it complete), so the finished file has exactly
    /// the declared length — or it is gone. Nothing is written here: the request
    /// finishing it writes the sidecar, under its lock.
    fn recover_complete(
        &self,
        id: &UploadId,
        mut info: UploadInfo,
        e: io::Error,
    ) -> Result<UploadInfo, Unavailable> {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(Unavailable::Io(e));
        }
        let finished = fs::metadata(self.final_path(id)).ok().map(|m| m.len());
        if finished.is_some() && finished == info.length {
            info.complete = true;
            return Ok(info);
        }
        Err(Unavailable::NotFound)
    }

    /// The upload's state for `HEAD`; an expired upload is removed (410) unless a
    /// request is writing to it at this moment.
    pub fn status(
        &self,
        id: &UploadId,
        expiration: Option<Duration>,
    ) -> Result<Status, Unavailable> {
        let info = self.read_info(id)?;
        if info.complete {
            return Ok(Status {
                offset: info.length.unwrap_or(0),
                info,
                modified: None,
            });
        }
        let meta = match fs::metadata(self.data_path(id)) {
            Ok(m) => m,
            Err(e) => {
                let info = self.recover_complete(id, info, e)?;
                return Ok(Status {
                    offset: info.length.unwrap_or(0),
                    info,
                    modified: None,
                });
            }
        };
        let modified = meta.modified()?;
        if is_expired(modified, expiration) {
            // Removed unless a request is writing to it at this moment.
            if let Err(Err(Unavailable::Expired)) = self.lock(id, expiration) {
                return Err(Unavailable::Expired);
            }
        }
        Ok(Status {
            info,
            offset: meta.len(),
            modified: Some(modified),
        })
    }

    /// Termination: removes an upload, finished or not (the finished file only
    /// if it is still where the upload put it).
    pub fn terminate(&self, id: &UploadId) -> Result<(), Unavailable> {
        match self.lock(id, None) {
            Ok(locked) => {
                self.remove_files(id);
                drop(locked);
                Ok(())
            }
            Err(Ok(_complete)) => {
                let _ = fs::remove_file(self.final_path(id));
                fs::remove_file(self.info_path(id))?;
                Ok(())
            }
            Err(Err(e)) => Err(e),
        }
    }

    /// Records a length that was deferred at creation.
    pub fn set_length(&self, locked: &mut Locked, length: u64) -> io::Result<()> {
        let mut info = locked.info.clone();
        info.length = Some(length);
        self.write_info(&locked.id, &info)?;
        locked.info = info;
        Ok(())
    }

    /// Makes the bytes received so far durable (when configured to per PATCH).
    pub fn sync(&self, locked: &Locked) -> io::Result<()> {
        if self.sync_each_patch {
            locked.file.sync_data()?;
        }
        Ok(())
    }

    /// The last byte has landed: the data is made durable, moved into place
    /// (same folder tree, so a rename) and the upload marked complete. Returns
    /// the finished file's path.
    pub fn finish(&self, locked: &mut Locked) -> io::Result<PathBuf> {
        locked.file.sync_data()?;
        let done = self.final_path(&locked.id);
        fs::rename(self.data_path(&locked.id), &done)?;
        sync_dir(&self.folder);
        let mut info = locked.info.clone();
        info.complete = true;
        self.write_info(&locked.id, &info)?;
        locked.info = info;
        Ok(done)
    }

    /// Removes expired uploads (unfinished ones past their expiry, and the
    /// records of finished ones as old) and orphans a crash may have left.
    pub fn sweep(&self, expiration: Duration) {
        let Ok(entries) = fs::read_dir(&self.partials) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| is_expired(t, Some(expiration)));
            if !old {
                continue;
            }
            if let Some(id) = name.strip_suffix(".info").and_then(UploadId::parse) {
                match self.lock(&id, Some(expiration)) {
                    Err(Ok(_complete)) => {
                        let _ = fs::remove_file(self.info_path(&id));
                    }
                    Err(Err(Unavailable::NotFound)) => self.remove_files(&id),
                    _ => {}
                }
            } else if let Some(id) = UploadId::parse(name) {
                // A data file whose sidecar never got written.
                if !self.info_path(&id).exists() {
                    let _ = fs::remove_file(entry.path());
                }
            } else if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    fn remove_files(&self, id: &UploadId) {
        let _ = fs::remove_file(self.data_path(id));
        let _ = fs::remove_file(self.info_path(id));
    }

    fn read_info(&self, id: &UploadId) -> Result<UploadInfo, Unavailable> {
        let text = fs::read_to_string(self.info_path(id))?;
        UploadInfo::decode(&text).ok_or(Unavailable::NotFound)
    }

    /// Write a temporary file, sync it, rename it over the old one: a reader (or
    /// a restart) sees the old sidecar or the new one, never half of one.
    fn write_info(&self, id: &UploadId, info: &UploadInfo) -> io::Result<()> {
        let tmp = self.partials.join(format!("{id}.info.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(info.encode().as_bytes())?;
        f.sync_data()?;
        fs::rename(&tmp, self.info_path(id))?;
        sync_dir(&self.partials);
        Ok(())
    }
}

/// When an unfinished upload last written at `modified` expires.
pub fn expires_at(modified: SystemTime, expiration: Option<Duration>) -> Option<SystemTime> {
    expiration.and_then(|e| modified.checked_add(e))
}

fn is_expired(modified: SystemTime, expiration: Option<Duration>) -> bool {
    expires_at(modified, expiration).is_some_and(|at| at <= SystemTime::now())
}

/// `true` if the lock was taken, `false` if another descriptor holds it.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: flock on a descriptor this File owns; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Makes a rename in `dir` durable. Best effort: some filesystems refuse to sync
/// a directory, and the rename itself has already happened.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "bustapi-tus-store-{}-{}",
            std::process::id(),
            UploadId::generate().unwrap()
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn info(length: Option<u64>) -> UploadInfo {
        UploadInfo {
            length,
            metadata: String::new(),
            complete: false,
        }
    }

    #[test]
    fn a_second_writer_is_told_the_upload_is_busy() {
        let store = Store::new(tmp(), false);
        let id = UploadId::generate().unwrap();
        let first = store.create(id.clone(), info(Some(10))).unwrap();
        assert!(matches!(store.lock(&id, None), Err(Err(Unavailable::Busy))));
        drop(first);
        assert!(store.lock(&id, None).is_ok());
    }

    #[test]
    fn the_offset_is_the_data_on_disk_and_finishing_moves_it_into_place() {
        use std::os::unix::fs::FileExt;
        let dir = tmp();
        let store = Store::new(dir.clone(), true);
        let id = UploadId::generate().unwrap();
        let up = store.create(id.clone(), info(Some(5))).unwrap();
        up.file.write_all_at(b"abc", 0).unwrap();
        drop(up);
        // As after a restart: a fresh Store finds what is on disk.
        let store = Store::new(dir.clone(), true);
        assert_eq!(store.status(&id, None).unwrap().offset, 3);
        let mut up = store.lock(&id, None).ok().unwrap();
        assert_eq!(up.offset, 3);
        up.file.write_all_at(b"de", 3).unwrap();
        let path = store.finish(&mut up).unwrap();
        assert_eq!(path, dir.join(id.as_str()));
        assert_eq!(fs::read(&path).unwrap(), b"abcde");
        let done = store.status(&id, None).unwrap();
        assert!(done.info.complete && done.offset == 5 && done.modified.is_none());
        store.terminate(&id).unwrap();
        assert!(!path.exists());
        assert!(matches!(
            store.status(&id, None),
            Err(Unavailable::NotFound)
        ));
    }

    #[test]
    fn expired_uploads_are_removed() {
        let store = Store::new(tmp(), false);
        let id = UploadId::generate().unwrap();
        drop(store.create(id.clone(), info(Some(10))).unwrap());
        let expired = Some(Duration::ZERO);
        assert!(matches!(
            store.status(&id, expired),
            Err(Unavailable::Expired)
        ));
        assert!(matches!(
            store.status(&id, None),
            Err(Unavailable::NotFound)
        ));
    }
}
