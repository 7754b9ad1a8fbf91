//! E' = AES-256-GCM in the STREAM construction (nonce = 7-byte random prefix, 32-bit big-endian
//! chunk counter, last-chunk flag), so memory stays flat for any record size.
//!
//! Layout of E' (all of it is what Hash C = SHA3-256 covers):
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `MCST` |
//! | 1 | version (1) |
//! | 1 | log2 of the plaintext chunk size (12..=24) |
//! | 7 | nonce prefix, random per stream |
//! | 32 | key commitment: SHA3-256(label ‖ DEK) |
//! | … | chunks: each full chunk is `chunk size + 16` bytes; the final one is shorter or equal |
//!
//! Every chunk's associated data is the header (without the commitment) followed by the
//! length-prefixed record id and hospital id, so a chunk only opens at its own position, in its
//! own stream, for its own record and hospital. The last-chunk flag in the nonce makes dropping
//! whole trailing chunks detectable. AES-GCM alone does not commit to its key; the commitment
//! makes a wrong key a distinct, early error instead of a generic authentication failure.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;

use aead_stream::{NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use keccak_asm::Sha3_256;
use sha3::Digest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::keys::random_bytes;
use crate::{CryptoError, Dek};

/// Plaintext bytes per chunk used by [`encrypt_stream`]. 64 KiB decrypted slightly faster than
/// 1 MiB in the `stream_throughput` bench (a chunk stays in the L2 cache), costs 16 bytes of tag
/// per 64 KiB, and keeps two chunk buffers (the peak working set) at 128 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 64 * 1024;
const MIN_CHUNK_LOG2: u8 = 12;
const MAX_CHUNK_LOG2: u8 = 24;
const MAGIC: &[u8; 4] = b"MCST";
const VERSION: u8 = 1;
const NONCE_PREFIX_LEN: usize = 7;
const COMMITMENT_LEN: usize = 32;
/// Header bytes covered by every chunk's associated data (everything before the commitment).
const BOUND_HEADER_LEN: usize = MAGIC.len() + 2 + NONCE_PREFIX_LEN;
const HEADER_LEN: usize = BOUND_HEADER_LEN + COMMITMENT_LEN;
const TAG_LEN: usize = 16;
const COMMITMENT_LABEL: &[u8] = b"medcert/stream-key-commitment/v1";

/// What a ciphertext is bound to: the record and the hospital it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAad<'a> {
    /// The record the ciphertext holds.
    pub record_id: &'a str,
    /// The hospital that sealed it.
    pub hospital_id: &'a str,
}

impl RecordAad<'_> {
    fn chunk_aad(&self, bound_header: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(
            bound_header.len() + 8 + self.record_id.len() + self.hospital_id.len(),
        );
        aad.extend_from_slice(bound_header);
        for part in [self.record_id, self.hospital_id] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// Hash C: SHA3-256 of E', the CSP object key and what the hospital chain stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashC([u8; 32]);

impl HashC {
    /// The Hash C whose digest is `bytes`.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        HashC(bytes)
    }

    /// The 32-byte digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for HashC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for HashC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashC({self})")
    }
}

fn commitment(dek: &Dek) -> [u8; COMMITMENT_LEN] {
    let mut hasher = Sha3_256::new();
    hasher.update(COMMITMENT_LABEL);
    hasher.update(dek.bytes());
    hasher.finalize().into()
}

fn chunk_log2(chunk_size: usize) -> Result<u8, CryptoError> {
    let log2 = chunk_size.trailing_zeros();
    if chunk_size.is_power_of_two()
        && (u32::from(MIN_CHUNK_LOG2)..=u32::from(MAX_CHUNK_LOG2)).contains(&log2)
    {
        Ok(log2 as u8)
    } else {
        Err(CryptoError::InvalidChunkSize(chunk_size))
    }
}

fn stream_cipher(dek: &Dek, nonce_prefix: &[u8; NONCE_PREFIX_LEN]) -> StreamBE32<Aes256Gcm> {
    let aead = Aes256Gcm::new(dek.bytes().into());
    StreamBE32::from_aead(aead, nonce_prefix.into())
}

fn too_many_chunks() -> CryptoError {
    CryptoError::TooLong {
        what: "plaintext (in chunks)",
        len: u32::MAX as usize,
        max: u32::MAX as usize - 1,
    }
}

/// Seals chunks in order; the caller decides which chunk is the last.
struct Sealer {
    stream: StreamBE32<Aes256Gcm>,
    aad: Vec<u8>,
    position: u32,
}

impl Sealer {
    fn new(
        dek: &Dek,
        aad: &RecordAad<'_>,
        chunk_size: usize,
    ) -> Result<(Self, [u8; HEADER_LEN]), CryptoError> {
        let log2 = chunk_log2(chunk_size)?;
        let prefix = random_bytes::<NONCE_PREFIX_LEN>();
        let mut header = [0u8; HEADER_LEN];
        header[..4].copy_from_slice(MAGIC);
        header[4] = VERSION;
        header[5] = log2;
        header[6..BOUND_HEADER_LEN].copy_from_slice(prefix.as_ref());
        header[BOUND_HEADER_LEN..].copy_from_slice(&commitment(dek));
        let sealer = Sealer {
            stream: stream_cipher(dek, &prefix),
            aad: aad.chunk_aad(&header[..BOUND_HEADER_LEN]),
            position: 0,
        };
        Ok((sealer, header))
    }

    /// Encrypts `buf` in place and appends its tag.
    fn seal(&mut self, buf: &mut Vec<u8>, last: bool) -> Result<(), CryptoError> {
        if self.position == u32::MAX {
            return Err(too_many_chunks());
        }
        self.stream
            .encrypt_in_place(self.position, last, &self.aad, buf)
            .expect("AES-GCM encryption of a chunk below its size limit cannot fail");
        self.position += 1;
        Ok(())
    }
}

/// Opens chunks in order and tells truncation, tampering and a wrong key apart.
struct Opener {
    stream: StreamBE32<Aes256Gcm>,
    aad: Vec<u8>,
    position: u32,
    /// Sealed chunk length: plaintext chunk size plus the tag.
    sealed_chunk_len: usize,
    key_committed: bool,
}

/// Checks the opening of one of medcert's binary formats (`what`): its four `magic` bytes,
/// then its `version`. `found` holds at least five bytes.
pub(crate) fn check_opening(
    what: &'static str,
    magic: &[u8; 4],
    version: u8,
    found: &[u8],
) -> Result<(), CryptoError> {
    if &found[..4] != magic {
        return Err(CryptoError::Malformed {
            what,
            reason: "wrong magic bytes",
        });
    }
    if found[4] != version {
        return Err(CryptoError::UnsupportedVersion {
            what,
            version: found[4],
        });
    }
    Ok(())
}

impl Opener {
    fn new(dek: &Dek, aad: &RecordAad<'_>, header: &[u8; HEADER_LEN]) -> Result<Self, CryptoError> {
        const WHAT: &str = "encrypted record (E')";
        check_opening(WHAT, MAGIC, VERSION, header)?;
        let log2 = header[5];
        if !(MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&log2) {
            return Err(CryptoError::Malformed {
                what: WHAT,
                reason: "chunk size out of range",
            });
        }
        let prefix: [u8; NONCE_PREFIX_LEN] = header[6..BOUND_HEADER_LEN].try_into().unwrap();
        let expected = commitment(dek);
        let differing = header[BOUND_HEADER_LEN..]
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        Ok(Opener {
            stream: stream_cipher(dek, &prefix),
            aad: aad.chunk_aad(&header[..BOUND_HEADER_LEN]),
            position: 0,
            sealed_chunk_len: (1usize << log2) + TAG_LEN,
            key_committed: differing == 0,
        })
    }

    /// Decrypts a chunk that is followed by more data.
    fn open_next(&mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        if self.position == u32::MAX {
            return Err(too_many_chunks());
        }
        let opened = self
            .stream
            .decrypt_in_place(self.position, false, &self.aad, buf)
            .map_err(|_| CryptoError::Tampered);
        self.position += 1;
        self.judge(opened)
    }

    /// Decrypts the chunk the stream ends with. If it only opens as a non-final chunk, the
    /// stream was cut at a chunk boundary.
    fn open_final(&mut self, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        if buf.len() < TAG_LEN {
            return self.judge(Err(CryptoError::Truncated));
        }
        // AES-GCM decrypts in place even when the tag fails, so keep the sealed bytes for the
        // second attempt.
        let sealed = (buf.len() == self.sealed_chunk_len).then(|| Zeroizing::new(buf.clone()));
        let opened = if self
            .stream
            .decrypt_in_place(self.position, true, &self.aad, buf)
            .is_ok()
        {
            Ok(())
        } else if let Some(mut sealed) = sealed
            && self
                .stream
                .decrypt_in_place(self.position, false, &self.aad, &mut *sealed)
                .is_ok()
        {
            Err(CryptoError::Truncated)
        } else {
            Err(CryptoError::Tampered)
        };
        self.judge(opened)
    }

    fn judge(&mut self, opened: Result<(), CryptoError>) -> Result<(), CryptoError> {
        if self.key_committed {
            return opened;
        }
        match opened {
            // The key is right but the commitment in the header was altered.
            Ok(()) => Err(CryptoError::Tampered),
            Err(_) => Err(CryptoError::WrongKey(
                "this key did not encrypt the record (key commitment mismatch)",
            )),
        }
    }
}

fn chunk_buffer(capacity: usize) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(Vec::with_capacity(capacity))
}

/// Reads into `buf` (resized to `len`) until it is full or the reader ends; returns the count
/// and leaves `buf` truncated to it.
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, len: usize) -> io::Result<usize> {
    buf.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(filled)
}

async fn fill_async(
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut Vec<u8>,
    len: usize,
) -> io::Result<usize> {
    buf.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        match reader.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(filled)
}

fn read_header(reader: &mut impl Read) -> Result<[u8; HEADER_LEN], CryptoError> {
    let mut header = [0u8; HEADER_LEN];
    let mut buf = Vec::with_capacity(HEADER_LEN);
    if fill(reader, &mut buf, HEADER_LEN)? < HEADER_LEN {
        return Err(CryptoError::Truncated);
    }
    header.copy_from_slice(&buf);
    Ok(header)
}

async fn read_header_async(
    reader: &mut (impl AsyncRead + Unpin),
) -> Result<[u8; HEADER_LEN], CryptoError> {
    let mut header = [0u8; HEADER_LEN];
    let mut buf = Vec::with_capacity(HEADER_LEN);
    if fill_async(reader, &mut buf, HEADER_LEN).await? < HEADER_LEN {
        return Err(CryptoError::Truncated);
    }
    header.copy_from_slice(&buf);
    Ok(header)
}

/// Encrypts everything `reader` yields into E' on `writer`, chunked at
/// [`DEFAULT_CHUNK_SIZE`], and returns Hash C computed on the way.
pub fn encrypt_stream(
    dek: &Dek,
    aad: &RecordAad<'_>,
    reader: impl Read,
    writer: impl Write,
) -> Result<HashC, CryptoError> {
    encrypt_stream_with_chunk_size(dek, aad, DEFAULT_CHUNK_SIZE, reader, writer)
}

/// [`encrypt_stream`] with another plaintext chunk size (a power of two, 4 KiB to 16 MiB). The
/// size is recorded in the header, so decryption needs no setting.
pub fn encrypt_stream_with_chunk_size(
    dek: &Dek,
    aad: &RecordAad<'_>,
    chunk_size: usize,
    mut reader: impl Read,
    mut writer: impl Write,
) -> Result<HashC, CryptoError> {
    let (mut sealer, header) = Sealer::new(dek, aad, chunk_size)?;
    let mut hasher = Sha3_256::new();
    let mut emit = |bytes: &[u8]| -> io::Result<()> {
        hasher.update(bytes);
        writer.write_all(bytes)
    };
    emit(&header)?;
    // One chunk of read-ahead tells whether the current chunk is the last.
    let mut current = chunk_buffer(chunk_size + TAG_LEN);
    let mut next = chunk_buffer(chunk_size + TAG_LEN);
    let mut len = fill(&mut reader, &mut current, chunk_size)?;
    loop {
        let last = len < chunk_size || fill(&mut reader, &mut next, chunk_size)? == 0;
        sealer.seal(&mut current, last)?;
        emit(&current)?;
        if last {
            break;
        }
        std::mem::swap(&mut current, &mut next);
        len = current.len();
    }
    writer.flush()?;
    Ok(HashC(hasher.finalize().into()))
}

/// Decrypts E' from `reader` onto `writer` and returns the plaintext length. Chunks are written
/// as they verify, so on an error `writer` may hold a verified prefix of the plaintext: use
/// [`decrypt_to_file`] when nothing must be left behind.
pub fn decrypt_stream(
    dek: &Dek,
    aad: &RecordAad<'_>,
    mut reader: impl Read,
    mut writer: impl Write,
) -> Result<u64, CryptoError> {
    let header = read_header(&mut reader)?;
    let mut opener = Opener::new(dek, aad, &header)?;
    let sealed_len = opener.sealed_chunk_len;
    let mut current = chunk_buffer(sealed_len);
    let mut next = chunk_buffer(sealed_len);
    let mut total = 0u64;
    let mut len = fill(&mut reader, &mut current, sealed_len)?;
    loop {
        let last = len < sealed_len || fill(&mut reader, &mut next, sealed_len)? == 0;
        if last {
            opener.open_final(&mut current)?;
        } else {
            opener.open_next(&mut current)?;
        }
        writer.write_all(&current)?;
        total += current.len() as u64;
        if last {
            break;
        }
        std::mem::swap(&mut current, &mut next);
        len = current.len();
    }
    writer.flush()?;
    Ok(total)
}

/// [`encrypt_stream`] over tokio I/O.
pub async fn encrypt_stream_async(
    dek: &Dek,
    aad: &RecordAad<'_>,
    mut reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
) -> Result<HashC, CryptoError> {
    let chunk_size = DEFAULT_CHUNK_SIZE;
    let (mut sealer, header) = Sealer::new(dek, aad, chunk_size)?;
    let mut hasher = Sha3_256::new();
    hasher.update(header);
    writer.write_all(&header).await?;
    let mut current = chunk_buffer(chunk_size + TAG_LEN);
    let mut next = chunk_buffer(chunk_size + TAG_LEN);
    let mut len = fill_async(&mut reader, &mut current, chunk_size).await?;
    loop {
        let last = len < chunk_size || fill_async(&mut reader, &mut next, chunk_size).await? == 0;
        sealer.seal(&mut current, last)?;
        hasher.update(&*current);
        writer.write_all(&current).await?;
        if last {
            break;
        }
        std::mem::swap(&mut current, &mut next);
        len = current.len();
    }
    writer.flush().await?;
    Ok(HashC(hasher.finalize().into()))
}

/// [`decrypt_stream`] over tokio I/O; the same caveat about partial output applies.
pub async fn decrypt_stream_async(
    dek: &Dek,
    aad: &RecordAad<'_>,
    mut reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
) -> Result<u64, CryptoError> {
    let header = read_header_async(&mut reader).await?;
    let mut opener = Opener::new(dek, aad, &header)?;
    let sealed_len = opener.sealed_chunk_len;
    let mut current = chunk_buffer(sealed_len);
    let mut next = chunk_buffer(sealed_len);
    let mut total = 0u64;
    let mut len = fill_async(&mut reader, &mut current, sealed_len).await?;
    loop {
        let last = len < sealed_len || fill_async(&mut reader, &mut next, sealed_len).await? == 0;
        if last {
            opener.open_final(&mut current)?;
        } else {
            opener.open_next(&mut current)?;
        }
        writer.write_all(&current).await?;
        total += current.len() as u64;
        if last {
            break;
        }
        std::mem::swap(&mut current, &mut next);
        len = current.len();
    }
    writer.flush().await?;
    Ok(total)
}

fn partial_file_in(path: &Path) -> io::Result<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // Same directory, so the final rename is atomic; tempfile creates it with mode 0600.
    tempfile::Builder::new()
        .prefix(".medcert-partial-")
        .tempfile_in(dir)
}

/// Decrypts E' into the file at `path`, all or nothing: the plaintext goes to a temporary file
/// beside it, which is synced and renamed over `path` only once every chunk has verified. On
/// any error the temporary file is removed and `path` is untouched. Returns the plaintext length.
pub fn decrypt_to_file(
    dek: &Dek,
    aad: &RecordAad<'_>,
    reader: impl Read,
    path: &Path,
) -> Result<u64, CryptoError> {
    let mut partial = partial_file_in(path)?;
    let len = decrypt_stream(dek, aad, reader, partial.as_file_mut())?;
    partial.as_file().sync_all()?;
    partial.persist(path).map_err(|e| e.error)?;
    Ok(len)
}

/// [`decrypt_to_file`] over tokio I/O.
pub async fn decrypt_to_file_async(
    dek: &Dek,
    aad: &RecordAad<'_>,
    reader: impl AsyncRead + Unpin,
    path: &Path,
) -> Result<u64, CryptoError> {
    // Creating the file is a single quick syscall; the bulk of the work is async.
    let (file, partial_path) = partial_file_in(path)?.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    // `partial_path` removes the file when dropped on an error path.
    let len = decrypt_stream_async(dek, aad, reader, &mut file).await?;
    file.sync_all().await?;
    drop(file);
    partial_path.persist(path).map_err(|e| e.error)?;
    Ok(len)
}
