//! Opening inputs: files, stdin, `http(s)://` URLs; transparent
//! decompression (gzip, bzip2, xz, zstd, by magic bytes) under bomb limits.
//!
//! Everything is a stream (`Box<dyn Read>`) so text formats parse in
//! constant memory. Formats that need random access (zip, xlsx, xls, ods)
//! get the file itself when the input is a plain file, and otherwise a
//! temporary spool file (stdin, URLs, decompressed streams), still bounded by
//! `--max-decompressed-bytes`.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use etl_core::{Error, Exit, Result};

use crate::events;

/// Where an input comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Standard input.
    Stdin,
    /// A local file.
    File(PathBuf),
    /// An `http://` or `https://` URL.
    Url(String),
}

impl Source {
    /// Classifies a command-line argument.
    pub fn from_arg(arg: &str) -> Self {
        if arg == "-" {
            Source::Stdin
        } else if arg.starts_with("http://") || arg.starts_with("https://") {
            Source::Url(arg.to_owned())
        } else {
            Source::File(PathBuf::from(arg))
        }
    }

    /// How the source is named in records and messages.
    pub fn name(&self) -> String {
        match self {
            Source::Stdin => "-".into(),
            Source::File(p) => p.display().to_string(),
            // A URL's credentials and query values (`?token=`) never reach a
            // record (`_source`), a log line or a reject.
            Source::Url(u) => etl_core::redact::url(u).into_owned(),
        }
    }

    /// The file name's extension, lower-cased (after `.gz` etc. is removed).
    pub fn extension(&self) -> Option<String> {
        let name = match self {
            Source::Stdin => return None,
            Source::File(p) => p.file_name()?.to_string_lossy().into_owned(),
            Source::Url(u) => u.split(['?', '#']).next()?.rsplit('/').next()?.to_owned(),
        };
        extension_of(&name)
    }
}

/// The meaningful extension of a file name: `a.csv.gz` -> `csv`.
pub fn extension_of(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.rsplit('.').collect();
    if parts.len() < 2 {
        return None;
    }
    if matches!(parts[0], "gz" | "gzip" | "bz2" | "xz" | "zst" | "zstd") && parts.len() > 2 {
        parts.remove(0);
    }
    Some(parts[0].to_owned())
}

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct Http {
    /// Connect and read timeout.
    pub timeout: Duration,
    /// Retries after the first attempt (5xx, 429 and connection errors).
    pub retries: u32,
}

/// Decompression limits (`--max-decompressed-bytes`, `--max-ratio`).
///
/// `max_bytes` is the total of one input: every stream decompressed while
/// reading it (its gzip/bzip2/xz/zstd layer, each archive member, nested
/// archives, the zip inside an xlsx/xlsb/ods) counts into one running
/// total, reset by [`Limits::start_input`]. The ratio is checked per stream.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Total bytes one input may decompress to.
    pub max_bytes: u64,
    /// Largest decompressed:compressed ratio (checked past 1 MiB).
    pub max_ratio: u64,
    tripped: Rc<std::cell::RefCell<Option<String>>>,
    /// Bytes decompressed so far for the current input.
    total: Rc<Cell<u64>>,
}

impl Limits {
    /// Limits with a fresh trip flag.
    pub fn new(max_bytes: u64, max_ratio: u64) -> Self {
        Self {
            max_bytes,
            max_ratio,
            tripped: Rc::new(std::cell::RefCell::new(None)),
            total: Rc::new(Cell::new(0)),
        }
    }

    /// A new input starts: its decompressed bytes count from zero.
    pub fn start_input(&self) {
        self.total.set(0);
        *self.tripped.borrow_mut() = None;
    }

    /// If a limit (or corrupt compressed data) stopped the read, the
    /// exit-65 error saying why.
    pub fn error(&self, what: &str) -> Option<Error> {
        self.tripped
            .borrow()
            .as_ref()
            .map(|why| Error::data(format!("{what}: {why}")))
    }

    /// The error for a failed read of `what`: the limit (or corrupt-data)
    /// error when one tripped, else an I/O error (74).
    pub fn read_error(&self, what: &str, e: &io::Error) -> Error {
        self.error(what)
            .unwrap_or_else(|| Error::new(Exit::IoErr, format!("{what}: {e}")))
    }

    fn trip(&self, why: String) {
        let mut t = self.tripped.borrow_mut();
        if t.is_none() {
            *t = Some(why);
        }
    }

    /// Wraps a decompressed stream: counts its bytes against the limits,
    /// `compressed` counting the bytes consumed from the compressed side.
    pub fn guard<R: Read>(&self, inner: R, compressed: Rc<Cell<u64>>) -> Guarded<R> {
        Guarded {
            inner,
            out: 0,
            compressed,
            limits: self.clone(),
        }
    }
}

/// A decompressed stream under [`Limits`].
#[derive(Debug)]
pub struct Guarded<R> {
    inner: R,
    out: u64,
    compressed: Rc<Cell<u64>>,
    limits: Limits,
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A failing decoder means corrupt data or an unsupported method: a
        // data error (65), not an I/O error of this machine.
        let n = self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.limits.trip(format!(
                    "compressed data is corrupt or uses an unsupported method: {e}"
                ));
            }
        })?;
        self.out += n as u64;
        let total = self.limits.total.get() + n as u64;
        self.limits.total.set(total);
        let trip = if total > self.limits.max_bytes {
            Some("decompressed size exceeds --max-decompressed-bytes")
        } else if self.out > 1 << 20
            && self.out / self.compressed.get().max(1) > self.limits.max_ratio
        {
            Some("compression ratio exceeds --max-ratio")
        } else {
            None
        };
        if let Some(which) = trip {
            self.limits.trip(format!(
                "{which} (a decompression bomb?); raise it if the input is genuine"
            ));
            return Err(io::Error::other(which));
        }
        Ok(n)
    }
}

/// Counts bytes read through it into a shared cell.
#[derive(Debug)]
pub struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> Counting<R> {
    /// Wraps `inner`; the count is shared with the returned cell.
    pub fn new(inner: R) -> (Self, Rc<Cell<u64>>) {
        let count = Rc::new(Cell::new(0));
        (
            Self {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A compression wrapper recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip
    Gzip,
    /// bzip2
    Bzip2,
    /// xz
    Xz,
    /// zstd
    Zstd,
}

impl Compression {
    /// Recognises the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Some(Self::Gzip)
        } else if head.starts_with(b"BZh") && head.get(3).is_some_and(u8::is_ascii_digit) {
            Some(Self::Bzip2)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Some(Self::Xz)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Self::Zstd)
        } else {
            None
        }
    }

    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Bzip2 => "bzip2",
            Self::Xz => "xz",
            Self::Zstd => "zstd",
        }
    }

    /// A decoder reading from `r`.
    pub fn decoder<'a>(self, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        let r = BufReader::new(r);
        Ok(match self {
            Self::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
            Self::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(r)),
            Self::Xz => Box::new(lzma_rust2::XzReader::new(r, true)),
            Self::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
        })
    }
}

/// Reads up to `n` bytes (fewer only at the end of the stream).
pub fn read_head(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(n);
    r.take(n as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// An opened input: its first bytes (already read) and the rest.
pub struct Opened<'a> {
    /// The first bytes, for format detection.
    pub head: Vec<u8>,
    /// The stream after `head`.
    pub rest: Box<dyn Read + 'a>,
    /// The local file, when the input is a plain (uncompressed) file: formats
    /// that need random access open it again instead of spooling.
    pub file: Option<PathBuf>,
    /// The compression that was removed, if any.
    pub compression: Option<Compression>,
}

impl std::fmt::Debug for Opened<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("head", &self.head.len())
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl<'a> Opened<'a> {
    /// The whole stream, head included.
    pub fn into_reader(self) -> Box<dyn Read + 'a> {
        Box::new(io::Cursor::new(self.head).chain(self.rest))
    }

    /// A seekable view: the plain file itself, or a spooled temporary copy.
    pub fn into_seekable(self, name: &str) -> Result<Seekable> {
        if let Some(path) = &self.file {
            let f = File::open(path).map_err(|e| Error::input(path, &e))?;
            return Ok(BufReader::new(f));
        }
        let mut tmp = tempfile::tempfile().map_err(|e| Error::output(Path::new("$TMPDIR"), &e))?;
        let mut r = self.into_reader();
        io::copy(&mut r, &mut tmp).map_err(|e| {
            Error::new(
                Exit::IoErr,
                format!("{name}: spooling to a temporary file: {e}"),
            )
        })?;
        tmp.rewind()
            .map_err(|e| Error::new(Exit::IoErr, format!("{name}: {e}")))?;
        Ok(BufReader::new(tmp))
    }
}

/// A seekable input for zip-based and OLE formats: the input file itself,
/// or a temporary spool of a stream.
pub type Seekable = BufReader<File>;

/// Opens `src`, removing one layer of compression if its magic bytes say so.
pub fn open<'a>(
    src: &Source,
    http: &Http,
    limits: &Limits,
    stdin: &'a mut dyn Read,
) -> Result<Opened<'a>> {
    let name = src.name();
    let (raw, file): (Box<dyn Read + 'a>, Option<PathBuf>) = match src {
        Source::Stdin => (Box::new(stdin), None),
        Source::File(p) => {
            let f = File::open(p).map_err(|e| Error::input(p, &e))?;
            if f.metadata().is_ok_and(|m| m.is_dir()) {
                return Err(Error::new(
                    Exit::NoInput,
                    format!("{}: is a directory", p.display()),
                ));
            }
            (Box::new(f), Some(p.clone()))
        }
        Source::Url(u) => (Box::new(fetch(u, http)?), None),
    };
    decompress(raw, file, limits, &name, 65_536)
}

/// Peeks at `raw`; if it is compressed, returns the decompressed stream.
pub fn decompress<'a>(
    mut raw: Box<dyn Read + 'a>,
    file: Option<PathBuf>,
    limits: &Limits,
    name: &str,
    head_len: usize,
) -> Result<Opened<'a>> {
    let read_err = |e: io::Error| limits.read_error(name, &e);
    let magic = read_head(&mut raw, 8).map_err(read_err)?;
    let Some(c) = Compression::sniff(&magic) else {
        let head_rest =
            read_head(&mut raw, head_len.saturating_sub(magic.len())).map_err(read_err)?;
        let mut head = magic;
        head.extend_from_slice(&head_rest);
        return Ok(Opened {
            head,
            rest: raw,
            file,
            compression: None,
        });
    };
    let (counted, compressed) = Counting::new(io::Cursor::new(magic).chain(raw));
    let decoder = c
        .decoder(counted)
        .map_err(|e| Error::data(format!("{name}: not valid {}: {e}", c.name())))?;
    let mut guarded: Box<dyn Read + 'a> = Box::new(limits.guard(decoder, compressed));
    let head = read_head(&mut guarded, head_len).map_err(|e| {
        limits
            .error(name)
            .unwrap_or_else(|| Error::data(format!("{name}: {} data is corrupt: {e}", c.name())))
    })?;
    events::decompressing(name, c.name());
    Ok(Opened {
        head,
        rest: guarded,
        file: None,
        compression: Some(c),
    })
}

/// GETs `url` with retries (5xx, 429, connection errors; etl-core's
/// backoff, honouring Retry-After) and returns the body as a stream.
fn fetch(url: &str, http: &Http) -> Result<reqwest::blocking::Response> {
    let client = reqwest::blocking::Client::builder()
        .connect_timeout(http.timeout)
        .timeout(None)
        .user_agent(concat!("etl-parse/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal(format!("HTTP client: {e}")))?;
    // etl-core's one retry policy: full jitter up to 200 ms doubling, at
    // most 10 s, never shorter than the server's Retry-After.
    let backoff = etl_core::retry::Backoff {
        base: Duration::from_millis(200),
        cap: Duration::from_secs(10),
    };
    let mut attempt = 0;
    let shown = etl_core::redact::url(url);
    loop {
        let outcome = client.get(url).timeout(http.timeout).send();
        let mut retry_after = None;
        let retryable = match &outcome {
            Ok(resp) => {
                let s = resp.status();
                retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(etl_core::retry::parse_retry_after);
                if s.is_success() {
                    return outcome.map_err(|e| Error::internal(e.to_string()));
                }
                let code = s.as_u16();
                let exit = match code {
                    401 | 403 => Some(Exit::NoPerm),
                    404 | 410 => Some(Exit::NoInput),
                    429 | 500..=599 => None,
                    _ => Some(Exit::Unavailable),
                };
                if let Some(exit) = exit {
                    return Err(Error::new(exit, format!("{shown}: HTTP {s}")));
                }
                format!("HTTP {s}")
            }
            Err(e) => format!("{e}").replace(url, &shown),
        };
        if attempt >= http.retries {
            return Err(Error::new(
                Exit::Unavailable,
                format!("{shown}: {retryable} (after {} attempts)", attempt + 1),
            ));
        }
        let delay = backoff.delay(attempt, retry_after);
        attempt += 1;
        events::http_retry(&shown, attempt, &retryable, delay);
        std::thread::sleep(delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn extensions_skip_compression_suffixes() {
        assert_eq!(extension_of("a.CSV"), Some("csv".into()));
        assert_eq!(extension_of("a.csv.gz"), Some("csv".into()));
        assert_eq!(extension_of("a.gz"), Some("gz".into()));
        assert_eq!(extension_of("noext"), None);
        assert_eq!(
            Source::from_arg("http://h/x/r.xlsx?a=1").extension(),
            Some("xlsx".into())
        );
    }

    #[test]
    fn gzip_is_opened_transparently_and_bombs_trip() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'a'; 4 << 20]).unwrap();
        let bytes = gz.finish().unwrap();
        let limits = Limits::new(1 << 30, 100);
        let o = decompress(
            Box::new(io::Cursor::new(bytes.clone())),
            None,
            &limits,
            "x.gz",
            16,
        )
        .unwrap();
        assert_eq!(o.compression, Some(Compression::Gzip));
        let mut r = o.into_reader();
        let err = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(err.to_string().contains("ratio"), "{err}");
        assert!(limits
            .error("x.gz")
            .unwrap()
            .to_string()
            .contains("--max-ratio"));
        let limits = Limits::new(1 << 20, 1_000_000);
        let mut r = decompress(Box::new(io::Cursor::new(bytes)), None, &limits, "x.gz", 16)
            .unwrap()
            .into_reader();
        assert!(io::copy(&mut r, &mut io::sink()).is_err());
        assert!(limits
            .error("x.gz")
            .unwrap()
            .to_string()
            .contains("--max-decompressed-bytes"));
    }
}
