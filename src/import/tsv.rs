//! Tab-separated export files (GDELT, POLECAT), plain or as the single file of a zip archive,
//! read as a stream of rows in chunks. A reader thread parses and hands over one chunk at a
//! time through a channel of two, so memory is bounded by the chunk size whatever the file's.
//! Fields are not quoted in these formats (a `"` is text), so a row is a line split at tabs;
//! empty lines are passed over, line numbers still count them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

/// One line of the file, split at tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1 for the file's first line.
    pub line: u64,
    pub fields: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("could not read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a readable zip archive: {source}")]
    Zip {
        path: String,
        source: zip::result::ZipError,
    },
    #[error("{path} holds {files} files; a zipped export holds exactly one")]
    NotOneFile { path: String, files: usize },
}

/// How many rows pass to the importer at a time.
pub const CHUNK_ROWS: usize = 2000;

/// Starts reading `path` in a thread; the chunks arrive in file order, an error ends them.
pub fn read_in_chunks(
    path: PathBuf,
    chunk_rows: usize,
) -> mpsc::Receiver<Result<Vec<Row>, ReadError>> {
    let (sender, receiver) = mpsc::channel(2);
    std::thread::spawn(move || {
        if let Err(error) = read_file(&path, chunk_rows, &sender) {
            let _ = sender.blocking_send(Err(error));
        }
    });
    receiver
}

type Sender = mpsc::Sender<Result<Vec<Row>, ReadError>>;

fn read_file(path: &Path, chunk_rows: usize, sender: &Sender) -> Result<(), ReadError> {
    let shown = path.display().to_string();
    let io = |source| ReadError::Io {
        path: shown.clone(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let read = file.read(&mut magic).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    if read == 4 && magic == *b"PK\x03\x04" {
        let zip = |source| ReadError::Zip {
            path: shown.clone(),
            source,
        };
        let mut archive = zip::ZipArchive::new(file).map_err(zip)?;
        let files: Vec<usize> = (0..archive.len())
            .filter(|&index| archive.by_index(index).is_ok_and(|entry| entry.is_file()))
            .collect();
        let [index] = files[..] else {
            return Err(ReadError::NotOneFile {
                path: shown,
                files: files.len(),
            });
        };
        let entry = archive.by_index(index).map_err(zip)?;
        send_rows(&shown, entry, chunk_rows, sender)
    } else {
        send_rows(&shown, file, chunk_rows, sender)
    }
}

fn send_rows(
    path: &str,
    input: impl Read,
    chunk_rows: usize,
    sender: &Sender,
) -> Result<(), ReadError> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut bytes = Vec::new();
    let mut chunk = Vec::with_capacity(chunk_rows);
    let mut line = 0;
    loop {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|source| ReadError::Io {
                path: format!("{path}, line {}", line + 1),
                source,
            })?;
        if read == 0 {
            break;
        }
        line += 1;
        let text = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.is_empty() {
            continue;
        }
        chunk.push(Row {
            line,
            // GDELT and POLECAT are UTF-8; a stray byte becomes U+FFFD rather than a lost row.
            fields: text
                .split(|&b| b == b'\t')
                .map(|field| String::from_utf8_lossy(field).into_owned())
                .collect(),
        });
        if chunk.len() >= chunk_rows
            && sender
                .blocking_send(Ok(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(chunk_rows),
                )))
                .is_err()
        {
            return Ok(()); // the importer stopped
        }
    }
    if !chunk.is_empty() {
        let _ = sender.blocking_send(Ok(chunk));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    async fn rows(path: PathBuf, chunk_rows: usize) -> Vec<Vec<Row>> {
        let mut receiver = read_in_chunks(path, chunk_rows);
        let mut chunks = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            chunks.push(chunk.expect("readable"));
        }
        chunks
    }

    #[tokio::test]
    async fn plain_and_zipped_files_give_the_same_rows_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let text = "1\ta \"b\"\tc\n\n2\tМосква\n3\t\t\n";
        let plain = dir.path().join("rows.CSV");
        std::fs::write(&plain, text).unwrap();
        let zipped = dir.path().join("rows.CSV.zip");
        let mut writer = zip::ZipWriter::new(File::create(&zipped).unwrap());
        writer
            .start_file("rows.CSV", zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(text.as_bytes()).unwrap();
        writer.finish().unwrap();

        let chunks = rows(plain, 2).await;
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0][0].fields, ["1", "a \"b\"", "c"]);
        assert_eq!(chunks[0][1].line, 3);
        assert_eq!(chunks[0][1].fields, ["2", "Москва"]);
        assert_eq!(chunks[1][0].fields, ["3", "", ""]);
        assert_eq!(chunks, rows(zipped, 2).await);
    }
}
