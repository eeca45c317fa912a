//! Attachments kept apart from their message, one file per distinct
//! content, named by its SHA-256 (`data/attachments/ab/abcdef…`): the same
//! PDF sent by ten CSOs is kept once, and no name a sender chose ever
//! becomes part of a path. The stored raw message stays the source of
//! truth; this folder can be rebuilt from it by `mail reprocess`.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::parse::{AttachmentInfo, AttachmentNote};

/// Takes the bytes of each attachment up to `max_bytes` out of the parsed
/// message, to be written by [`write_all`], and marks the larger ones.
pub fn take(
    dir: &Path,
    attachments: &mut [AttachmentInfo],
    max_bytes: usize,
) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for a in attachments.iter_mut() {
        let bytes = std::mem::take(&mut a.bytes);
        if a.size > max_bytes {
            a.note = Some(AttachmentNote::TooLarge);
        } else {
            files.push((path_of(dir, &a.sha256), bytes));
        }
    }
    files
}

/// Writes the files [`take`] set aside, unless that content is there
/// already. A write that fails is logged; the attachment stays in the
/// stored message.
pub fn write_all(files: Vec<(PathBuf, Vec<u8>)>) {
    for (path, bytes) in files {
        if let Err(e) = write_once(&path, &bytes) {
            tracing::warn!(file = %path.display(), error = %e, "could not keep an attachment apart; it stays in the stored message");
        }
    }
}

/// [`take`] and [`write_all`] at once.
pub fn keep(dir: &Path, attachments: &mut [AttachmentInfo], max_bytes: usize) {
    write_all(take(dir, attachments, max_bytes));
}

/// Where the content with this SHA-256 (hex) is kept.
pub fn path_of(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(&sha256[..2.min(sha256.len())]).join(sha256)
}

/// Writes the file unless a complete one is there. No temporary file and
/// rename, and no fsync per file: the stored message (committed with a
/// sync) is the source of truth, a file cut short by a crash has the wrong
/// size and is written again the next time that content arrives, and `mail
/// reprocess` writes any that are missing.
fn write_once(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok(());
    }
    let mut file = match std::fs::File::create(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(path.parent().expect("a hash path has a folder"))?;
            std::fs::File::create(path)?
        }
        Err(e) => return Err(e),
    };
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    #[test]
    fn attachments_are_kept_by_content_and_large_ones_marked() {
        let dir = tempfile::tempdir().unwrap();
        let raw = b"From: a@cso.al\r\nSubject: P\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPropozimi.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\n%PDF-1.4 small\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"big.pdf\"\r\n\r\n%PDF-1.4 this one is larger than the limit\r\n--b--\r\n";
        let mut p = parse(raw).unwrap();
        keep(dir.path(), &mut p.attachments, 20);
        let small = &p.attachments[0];
        assert_eq!(small.name, "passwd");
        assert_eq!(small.note, None);
        let kept = path_of(dir.path(), &small.sha256);
        assert!(kept.starts_with(dir.path()));
        assert_eq!(std::fs::read(&kept).unwrap(), b"%PDF-1.4 small");
        assert_eq!(p.attachments[1].note, Some(AttachmentNote::TooLarge));
        assert!(!path_of(dir.path(), &p.attachments[1].sha256).exists());
        assert!(p.attachments.iter().all(|a| a.bytes.is_empty()));
        // The same content again: the file is there, nothing is rewritten.
        let mut again = parse(raw).unwrap();
        keep(dir.path(), &mut again.attachments, 20);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn inline_images_and_winmail_are_told_apart() {
        let raw = b"From: a@cso.al\r\nSubject: P\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: multipart/related; boundary=\"r\"\r\n\r\n--r\r\nContent-Type: text/html\r\n\r\n<p>Propozimi.</p><img src=\"cid:logo@cso\">\r\n--r\r\nContent-Type: image/png\r\nContent-ID: <logo@cso>\r\nContent-Disposition: inline; filename=\"image001.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n--m\r\nContent-Type: application/ms-tnef; name=\"winmail.dat\"\r\nContent-Disposition: attachment; filename=\"winmail.dat\"\r\nContent-Transfer-Encoding: base64\r\n\r\neJ8+IgAAAA==\r\n--m--\r\n";
        let p = parse(raw).unwrap();
        let logo = p
            .attachments
            .iter()
            .find(|a| a.name == "image001.png")
            .unwrap();
        assert!(logo.inline && !logo.is_document());
        let tnef = p
            .attachments
            .iter()
            .find(|a| a.name == "winmail.dat")
            .unwrap();
        assert_eq!(tnef.note, Some(AttachmentNote::Winmail));
        assert!(tnef.is_document());
    }
}
