//! The CSP adapter: the hospital's encrypted records (E') in an object store, each stored
//! under its Hash C = SHA3-256(E') in lowercase hex.
//!
//! Two backends, both from `object_store`: a local directory (the embedded default) and any
//! S3-compatible service. Content is streamed both ways and never held whole in memory.
//! Hash C is checked on the way in (a put whose content does not hash to its key stores
//! nothing; [`Csp::put_hashed`] trusts a caller that hashed the content as it wrote it)
//! and again on the way out (a corrupted or misplaced object is refused).

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetResultPayload, ObjectStore, ObjectStoreExt, RetryConfig};
use sha3::{Digest, Sha3_256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

pub use medcert_network::S3 as S3Config;

/// Hash C: SHA3-256 of the ciphertext E', the object's key.
pub type HashC = [u8; 32];

/// Objects up to this size go up in one request; larger ones as a multipart upload of
/// parts this big (S3 needs at least 5 MiB per part).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once during a multipart upload, so memory stays near
/// `PART_SIZE * (PARTS_IN_FLIGHT + 1)` whatever the object's size.
const PARTS_IN_FLIGHT: usize = 2;
/// Bytes per read of content to put or of a local object, and per write of a fetched one.
const IO_BUFFER: usize = 1024 * 1024;

/// Why a CSP operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CspError {
    /// No object is stored under the key.
    #[error("no object {key} in the CSP")]
    NotFound {
        /// The object key: Hash C in lowercase hex.
        key: String,
    },
    /// The content does not hash to the Hash C it was put or got under.
    #[error(
        "object {key} does not hash to its key (its SHA3-256 is {actual}): the stored \
         ciphertext is corrupt or was stored under the wrong Hash C; nothing was kept"
    )]
    HashMismatch {
        /// The object key: the expected Hash C in lowercase hex.
        key: String,
        /// The content's SHA3-256, in lowercase hex.
        actual: String,
    },
    /// The local directory could not be created or opened as a store.
    #[error("cannot use {path} as the local CSP directory: {source}")]
    LocalDirectory {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        #[source]
        source: std::io::Error,
    },
    /// The S3 settings do not make a client.
    #[error("invalid S3 configuration for {endpoint}: {source}")]
    S3Config {
        /// The configured endpoint URL.
        endpoint: String,
        /// What `object_store` refused.
        #[source]
        source: object_store::Error,
    },
    /// Reading the content to put failed; nothing was stored.
    #[error("cannot read the content to store as {key}: {source}")]
    Read {
        /// The object key the content was going to.
        key: String,
        /// Why the read failed.
        #[source]
        source: std::io::Error,
    },
    /// Writing a fetched object to its destination file failed; the file is unchanged.
    #[error("cannot write object {key} to {path}: {source}")]
    Write {
        /// The object key being fetched.
        key: String,
        /// The destination file.
        path: PathBuf,
        /// Why the write failed.
        #[source]
        source: std::io::Error,
    },
    /// The object store refused or failed an operation.
    #[error("CSP {operation} of {key} failed: {source}")]
    Store {
        /// `put`, `get`, `head` or `delete`.
        operation: &'static str,
        /// The object key.
        key: String,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An object store holding records by Hash C.
#[derive(Debug, Clone)]
pub struct Csp {
    store: Arc<dyn ObjectStore>,
}

impl Csp {
    /// The embedded default: objects are files in `dir`, created if missing. A put is
    /// written to a staging file and renamed into place, so a failed put leaves nothing.
    pub fn local(dir: impl AsRef<Path>) -> Result<Self, CspError> {
        let dir = dir.as_ref();
        let local_error = |source| CspError::LocalDirectory {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(local_error)?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| local_error(std::io::Error::other(e)))?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// An S3-compatible service, addressed path-style (`<endpoint>/<bucket>/<key>`) so it
    /// works with any host name; plain HTTP is allowed, for a server on loopback.
    pub fn s3(config: &S3Config) -> Result<Self, CspError> {
        let client = ClientOptions::new()
            .with_allow_http(true)
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(120));
        // A few quick retries: an unreachable CSP should fail in seconds, not minutes.
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(15),
            ..RetryConfig::default()
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_region(&config.region)
            .with_bucket_name(&config.bucket)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .map_err(|source| CspError::S3Config {
                endpoint: config.endpoint.clone(),
                source,
            })?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// The underlying store, for tools that need raw access (benchmarks, repair).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        Arc::clone(&self.store)
    }

    /// Streams `content` into the store under `hash_c` and returns its length. If the
    /// content does not hash to `hash_c`, or reading or uploading fails, the upload is
    /// abandoned and nothing is stored.
    pub async fn put<R>(&self, hash_c: &HashC, content: R) -> Result<u64, CspError>
    where
        R: AsyncRead + Unpin,
    {
        self.upload(hash_c, content, Some(Sha3_256::new())).await
    }

    /// [`Csp::put`] of content the caller hashed to `hash_c` in the pass that wrote it
    /// (encryption hashes E' as it writes it): it is not hashed again on the way in. A
    /// get still checks it on the way out.
    pub async fn put_hashed<R>(&self, hash_c: &HashC, content: R) -> Result<u64, CspError>
    where
        R: AsyncRead + Unpin,
    {
        self.upload(hash_c, content, None).await
    }

    /// Streams `content` under `hash_c`, checking it with `hasher` if given.
    async fn upload<R>(
        &self,
        hash_c: &HashC,
        mut content: R,
        mut hasher: Option<Sha3_256>,
    ) -> Result<u64, CspError>
    where
        R: AsyncRead + Unpin,
    {
        let key = key_of(hash_c);
        let mut upload = BufWriter::with_capacity(self.object_store(), location(&key), PART_SIZE)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        let mut buffer = vec![0; IO_BUFFER];
        let mut length = 0u64;
        let outcome: Result<(), CspError> = async {
            loop {
                let read = content
                    .read(&mut buffer)
                    .await
                    .map_err(|source| CspError::Read {
                        key: key.clone(),
                        source,
                    })?;
                if read == 0 {
                    break;
                }
                if let Some(hasher) = &mut hasher {
                    hasher.update(&buffer[..read]);
                }
                upload
                    .write_all(&buffer[..read])
                    .await
                    .map_err(|e| store_error("put", &key, e))?;
                length += read as u64;
            }
            match hasher {
                Some(hasher) => check_hash(&key, hash_c, hasher.finalize().into()),
                None => Ok(()),
            }
        }
        .await;
        if let Err(error) = outcome {
            // Best effort: the error that stopped the put matters more than a failed
            // clean-up, and an unfinished multipart upload is never visible as an object.
            let _ = upload.abort().await;
            return Err(error);
        }
        upload
            .shutdown()
            .await
            .map_err(|e| store_error("put", &key, e))?;
        Ok(length)
    }

    /// The content stored under `hash_c`, as a stream of chunks whose SHA3-256 is checked
    /// as they pass. **The chunks are untrusted until the stream has ended without an
    /// error**: a mismatch is only known after the last chunk, and is then the stream's
    /// final item ([`CspError::HashMismatch`]). Prefer [`Csp::get_to_file`], which keeps
    /// nothing unless the check passes.
    pub async fn get(
        &self,
        hash_c: &HashC,
    ) -> Result<impl Stream<Item = Result<Bytes, CspError>> + Send + 'static, CspError> {
        let key = key_of(hash_c);
        let object = self
            .store
            .get(&location(&key))
            .await
            .map_err(|e| classify("get", &key, e))?;
        let expected = *hash_c;
        let chunks = match object.payload {
            // object_store reads a local file 8 KiB per blocking task; large reads make a
            // local get several times faster.
            GetResultPayload::File(file, _) => {
                let length = object.range.end - object.range.start;
                let mut file = tokio::fs::File::from_std(file);
                file.seek(SeekFrom::Start(object.range.start))
                    .await
                    .map_err(|e| store_error("get", &key, e))?;
                ReaderStream::with_capacity(file.take(length), IO_BUFFER)
                    .map(|chunk| {
                        chunk.map_err(|e| object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: Box::new(e),
                        })
                    })
                    .boxed()
            }
            GetResultPayload::Stream(chunks) => chunks,
        };
        let state = Verifying {
            chunks,
            hasher: Some(Sha3_256::new()),
            key,
        };
        Ok(futures_util::stream::unfold(
            state,
            move |mut state| async move {
                let hasher = state.hasher.as_mut()?;
                match state.chunks.next().await {
                    Some(Ok(chunk)) => {
                        hasher.update(&chunk);
                        Some((Ok(chunk), state))
                    }
                    Some(Err(e)) => {
                        state.hasher = None;
                        let error = classify("get", &state.key, e);
                        Some((Err(error), state))
                    }
                    None => {
                        let actual = state.hasher.take()?.finalize().into();
                        match check_hash(&state.key, &expected, actual) {
                            Ok(()) => None,
                            Err(mismatch) => Some((Err(mismatch), state)),
                        }
                    }
                }
            },
        ))
    }

    /// Writes the content stored under `hash_c` to `destination` and returns its length.
    /// The content goes to a temporary file beside `destination`, which is renamed into
    /// place only once the whole object has passed the Hash C check; on any error,
    /// `destination` is left as it was.
    pub async fn get_to_file(&self, hash_c: &HashC, destination: &Path) -> Result<u64, CspError> {
        let key = key_of(hash_c);
        let write_error = |source| CspError::Write {
            key: key.clone(),
            path: destination.to_owned(),
            source,
        };
        let directory = match destination.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let mut chunks = std::pin::pin!(self.get(hash_c).await?);
        let staging = tempfile::NamedTempFile::new_in(directory).map_err(write_error)?;
        let mut file = tokio::io::BufWriter::with_capacity(
            IO_BUFFER,
            tokio::fs::File::from_std(staging.reopen().map_err(write_error)?),
        );
        let mut length = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            file.write_all(&chunk).await.map_err(write_error)?;
            length += chunk.len() as u64;
        }
        file.flush().await.map_err(write_error)?;
        // On disk before the rename makes it visible under its final name.
        file.get_ref().sync_all().await.map_err(write_error)?;
        drop(file);
        staging
            .persist(destination)
            .map_err(|e| write_error(e.error))?;
        Ok(length)
    }

    /// Whether an object is stored under `hash_c`.
    pub async fn exists(&self, hash_c: &HashC) -> Result<bool, CspError> {
        let key = key_of(hash_c);
        match self.store.head(&location(&key)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error("head", &key, e)),
        }
    }

    /// Deletes the object stored under `hash_c`; [`CspError::NotFound`] if there is none
    /// (S3 itself would silently accept deleting a missing key).
    pub async fn delete(&self, hash_c: &HashC) -> Result<(), CspError> {
        let key = key_of(hash_c);
        if !self.exists(hash_c).await? {
            return Err(CspError::NotFound { key });
        }
        self.store
            .delete(&location(&key))
            .await
            .map_err(|e| classify("delete", &key, e))
    }
}

/// The object key of a record: Hash C in lowercase hex.
pub fn key_of(hash_c: &HashC) -> String {
    hex::encode(hash_c)
}

fn location(key: &str) -> ObjectPath {
    ObjectPath::from(key)
}

struct Verifying {
    chunks: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
    /// `None` once the stream has ended, with or without an error.
    hasher: Option<Sha3_256>,
    key: String,
}

fn check_hash(key: &str, expected: &HashC, actual: HashC) -> Result<(), CspError> {
    if actual == *expected {
        Ok(())
    } else {
        Err(CspError::HashMismatch {
            key: key.to_owned(),
            actual: hex::encode(actual),
        })
    }
}

fn classify(operation: &'static str, key: &str, error: object_store::Error) -> CspError {
    match error {
        object_store::Error::NotFound { .. } => CspError::NotFound {
            key: key.to_owned(),
        },
        other => store_error(operation, key, other),
    }
}

fn store_error(
    operation: &'static str,
    key: &str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> CspError {
    CspError::Store {
        operation,
        key: key.to_owned(),
        source: source.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_lowercase_hex_of_hash_c() {
        let hash_c: HashC = Sha3_256::digest(b"E'").into();
        let key = key_of(&hash_c);
        assert_eq!(key.len(), 64);
        assert_eq!(key, key.to_lowercase());
        assert_eq!(hex::decode(&key).unwrap(), hash_c);
    }

    #[test]
    fn hash_check_names_the_actual_digest() {
        let expected: HashC = Sha3_256::digest(b"stored").into();
        let actual: HashC = Sha3_256::digest(b"tampered").into();
        assert!(check_hash("k", &expected, expected).is_ok());
        let error = check_hash("k", &expected, actual).unwrap_err();
        assert!(error.to_string().contains(&hex::encode(actual)), "{error}");
    }
}
