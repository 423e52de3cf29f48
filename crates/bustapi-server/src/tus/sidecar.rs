//! What an upload is, apart from its bytes: the declared length, the metadata and
//! whether it completed. Kept in a small text file next to the data (`<id>.info`),
//! replaced atomically, so it survives a restart; the offset is never stored here
//! — it is the length of the data file, which cannot disagree with the data.

/// Format: one `key value` per line after a version line, so a future field can
/// be added without breaking older files.
const MAGIC: &str = "bustapi-tus 1";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    /// `None` while the length is deferred (`Upload-Defer-Length: 1`).
    pub length: Option<u64>,
    /// The normalised `Upload-Metadata` header, possibly empty.
    pub metadata: String,
    pub complete: bool,
}

impl UploadInfo {
    pub fn encode(&self) -> String {
        let length = self
            .length
            .map_or_else(|| "deferred".to_string(), |n| n.to_string());
        format!(
            "{MAGIC}\nlength {length}\nmetadata {}\ncomplete {}\n",
            self.metadata,
            u8::from(self.complete)
        )
    }

    /// `None` for anything that is not a whole sidecar (a torn or foreign file).
    pub fn decode(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let (mut length, mut metadata, mut complete) = (None, None, None);
        for line in lines {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            match key {
                "length" if value == "deferred" => length = Some(None),
                "length" => length = Some(Some(value.parse().ok()?)),
                "metadata" => metadata = Some(value.to_string()),
                "complete" => complete = Some(value == "1"),
                _ => {}
            }
        }
        Some(UploadInfo {
            length: length?,
            metadata: metadata?,
            complete: complete?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for info in [
            UploadInfo {
                length: Some(1 << 40),
                metadata: "filename YS5tcDQ=,private".into(),
                complete: false,
            },
            UploadInfo {
                length: None,
                metadata: String::new(),
                complete: true,
            },
        ] {
            assert_eq!(UploadInfo::decode(&info.encode()), Some(info));
        }
    }

    #[test]
    fn torn_or_foreign_files_are_not_uploads() {
        let whole = UploadInfo {
            length: Some(5),
            metadata: String::new(),
            complete: false,
        }
        .encode();
        for cut in 0..whole.len() - "complete 0\n".len() {
            assert_eq!(UploadInfo::decode(&whole[..cut]), None, "{cut}");
        }
        assert_eq!(
            UploadInfo::decode("length 5\nmetadata \ncomplete 0\n"),
            None
        );
        assert_eq!(
            UploadInfo::decode(&whole.replace("length 5", "length -5")),
            None
        );
    }
}
