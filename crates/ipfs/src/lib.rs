//! The IPFS adapter: envelopes go into a Kubo node and come back out by CID (Hash I).
//!
//! Every call goes through `ipfs-api-backend-hyper` to Kubo's RPC API. That crate is only
//! passively maintained and some of its calls no longer match current Kubo (its `id()`
//! expects a field Kubo stopped sending); this adapter uses only `add`, `cat`, `files stat`,
//! `pin add`, `pin ls`, `pin rm` and `version`, each proven against a real Kubo by the integration
//! tests.
//!
//! Every request carries Kubo's `offline=true` option: the node answers from its own
//! blockstore only, so an unknown CID is a prompt [`IpfsError::NotFound`] instead of a
//! search for providers that would hang until the timeout.
//!
//! Content is added with the options of [`ADD_OPTIONS`]; the same bytes always give the
//! same CID, and `ipfs add` with [`ADD_CLI_FLAGS`] gives that CID too.

#![warn(missing_docs)]
#![cfg_attr(test, allow(unused_crate_dependencies))] // a test binary links every dependency of its package

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use ipfs_api_backend_hyper::{
    BackendWithGlobalOptions, GlobalOptions, IpfsApi, IpfsClient, TryFromUri, request::Add,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// Bytes per leaf block: Kubo's default chunk size, stated so the CLI comparison matches.
pub const CHUNKER: &str = "size-262144";

/// The flags that make `ipfs add` produce the same CID as [`Ipfs::add`].
pub const ADD_CLI_FLAGS: [&str; 5] = [
    "--cid-version=1",
    "--raw-leaves",
    "--chunker=size-262144",
    "--hash=sha2-256",
    "--pin",
];

/// How envelopes are added: CIDv1 (base32 `bafy…`/`bafk…`), raw leaves, fixed 256 KiB
/// chunks, SHA2-256 multihash, pinned so the node's garbage collector keeps them.
pub const ADD_OPTIONS: AddOptions = AddOptions {
    cid_version: 1,
    raw_leaves: true,
    chunker: CHUNKER,
    hash: "sha2-256",
    pin: true,
};

/// The `ipfs add` options used for every envelope (see [`ADD_OPTIONS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOptions {
    /// The CID version; 1 gives base32 CIDs that name their codec and hash.
    pub cid_version: u32,
    /// Leaf blocks hold the raw bytes, not UnixFS nodes wrapping them.
    pub raw_leaves: bool,
    /// Kubo's chunker setting, e.g. `size-262144`.
    pub chunker: &'static str,
    /// The multihash function, e.g. `sha2-256`.
    pub hash: &'static str,
    /// Whether the node pins what it adds.
    pub pin: bool,
}

/// Bytes read from an envelope at a time while adding it.
const READ_BUFFER: usize = 1024 * 1024;

/// Default bound on each wait for the node.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call to the IPFS node failed.
#[derive(Debug, thiserror::Error)]
pub enum IpfsError {
    /// The API URL is not `http://host:port`.
    #[error("invalid IPFS API URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection to the node could be made.
    #[error("IPFS node at {url} is unreachable (is Kubo running? see deploy/status)")]
    Unreachable {
        /// The node's API URL.
        url: String,
    },
    /// The node did not answer within the client's timeout.
    #[error("IPFS node at {url} did not answer {operation} within {timeout:?}")]
    Timeout {
        /// The node's API URL.
        url: String,
        /// The RPC call, e.g. `add` or `pin rm`.
        operation: &'static str,
        /// The bound that passed.
        timeout: Duration,
    },
    /// The node does not hold the content (it answers offline, from its own blockstore).
    #[error("CID {cid} is not stored on this IPFS node")]
    NotFound {
        /// The CID asked for.
        cid: String,
    },
    /// The string is not a CID, by this client's check or the node's.
    #[error("{cid:?} is not a valid CID: {reason}")]
    InvalidCid {
        /// The string as given.
        cid: String,
        /// Why it is not a CID.
        reason: String,
    },
    /// The CID has no pin to remove.
    #[error("CID {cid} is not pinned on this IPFS node")]
    NotPinned {
        /// The CID asked for.
        cid: String,
    },
    /// The node answered with an error this client has no type for.
    #[error("IPFS node refused {operation}: {message}")]
    Refused {
        /// The RPC call, e.g. `add` or `pin rm`.
        operation: &'static str,
        /// Kubo's error message.
        message: String,
    },
    /// The request or its answer failed on the way (HTTP, decoding).
    #[error("IPFS {operation} failed in transport: {source}")]
    Transport {
        /// The RPC call, e.g. `add` or `pin rm`.
        operation: &'static str,
        /// The client crate's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `cat` ended before the size the node states for the CID.
    #[error(
        "IPFS node sent {received} of the {expected} bytes of {cid} and stopped (a block of \
         it may be missing from the node)"
    )]
    Truncated {
        /// The CID being read.
        cid: String,
        /// Its size, as `files stat` states it.
        expected: u64,
        /// The bytes delivered before the stream ended.
        received: u64,
    },
    /// Writing the content to the caller's writer failed.
    #[error("cannot write the content of {cid}: {source}")]
    Write {
        /// The CID being read.
        cid: String,
        /// Why the write failed.
        #[source]
        source: std::io::Error,
    },
}

/// A client of one Kubo node's RPC API; its clones share one connection pool.
#[derive(Clone)]
pub struct Ipfs {
    client: Arc<BackendWithGlobalOptions<IpfsClient>>,
    api_url: String,
    timeout: Duration,
}

impl Ipfs {
    /// A client of the node at `api_url` (`http://127.0.0.1:5001`, as in the network
    /// description). No request is sent until the first call.
    ///
    /// `timeout` bounds each wait for the node: the whole of `add`, `pin`, `unpin` and
    /// `is_pinned`, and in `cat` the first byte and every gap between chunks (so a large
    /// envelope may take longer in total, as long as it keeps flowing).
    pub fn new(api_url: &str, timeout: Duration) -> Result<Self, IpfsError> {
        check_api_url(api_url).map_err(|reason| IpfsError::InvalidUrl {
            url: api_url.to_owned(),
            reason: reason.to_owned(),
        })?;
        let client = IpfsClient::from_str(api_url).map_err(|e| IpfsError::InvalidUrl {
            url: api_url.to_owned(),
            reason: e.to_string(),
        })?;
        let options = GlobalOptions {
            offline: Some(true),
            timeout: None,
        };
        Ok(Self {
            client: Arc::new(BackendWithGlobalOptions::new(client, options)),
            api_url: api_url.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// The node's Kubo version: a cheap check that the node is up.
    pub async fn version(&self) -> Result<String, IpfsError> {
        let response = self.call("version", None, self.client.version()).await?;
        Ok(response.version)
    }

    /// Streams `content` into the node with [`ADD_OPTIONS`] and returns its CID (Hash I).
    /// The content is read as it is sent, never held whole in memory.
    pub async fn add<R>(&self, content: R) -> Result<String, IpfsError>
    where
        R: AsyncRead + Send + Sync + Unpin + 'static,
    {
        let options = Add {
            cid_version: Some(ADD_OPTIONS.cid_version),
            raw_leaves: Some(ADD_OPTIONS.raw_leaves),
            chunker: Some(ADD_OPTIONS.chunker),
            hash: Some(ADD_OPTIONS.hash),
            pin: Some(ADD_OPTIONS.pin),
            ..Add::default()
        };
        // The multipart encoder asks for a few KiB at a time; a buffer in between turns
        // that into few large reads of `content` (a file read is a thread hop each).
        let content = BufReader::with_capacity(READ_BUFFER, content);
        let request = self
            .client
            .add_async_with_options(content.compat(), options);
        let added = self.call("add", None, request).await?;
        Ok(added.hash)
    }

    /// The content of `cid` as a stream of chunks. An unknown CID fails here with
    /// [`IpfsError::NotFound`], before any content. The stream checks the length it
    /// delivers against the size the node states for the CID: Kubo reports a failure
    /// after the first byte only in an HTTP trailer this client cannot read, so a short
    /// stream ends in [`IpfsError::Truncated`] instead of passing for the whole content.
    /// After any error the stream ends.
    pub async fn cat(
        &self,
        cid: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, IpfsError>> + Send + 'static, IpfsError> {
        check_cid(cid)?;
        let stat = self
            .call(
                "cat",
                Some(cid),
                self.client.files_stat(&format!("/ipfs/{cid}")),
            )
            .await?;
        let state = Catting {
            chunks: Some(self.client.cat(cid)),
            expected: stat.size,
            received: 0,
            cid: cid.to_owned(),
            context: self.context(),
        };
        Ok(futures_util::stream::unfold(
            state,
            |mut state| async move {
                let operation = "cat";
                let chunks = state.chunks.as_mut()?;
                let next = tokio::time::timeout(state.context.timeout, chunks.next()).await;
                let item = match next {
                    Err(_) => Err(state.context.timeout_error(operation)),
                    Ok(Some(Ok(chunk))) => {
                        state.received += chunk.len() as u64;
                        return Some((Ok(chunk), state));
                    }
                    Ok(Some(Err(e))) => Err(state.context.classify(operation, Some(&state.cid), e)),
                    Ok(None) if state.received == state.expected => return None,
                    Ok(None) => Err(IpfsError::Truncated {
                        cid: state.cid.clone(),
                        expected: state.expected,
                        received: state.received,
                    }),
                };
                state.chunks = None;
                Some((item, state))
            },
        ))
    }

    /// The first `len` bytes of `cid` (fewer if the content is shorter): the node sends
    /// only those, where a [`cat`](Self::cat) dropped early would still have it read on.
    pub async fn cat_prefix(&self, cid: &str, len: usize) -> Result<Vec<u8>, IpfsError> {
        check_cid(cid)?;
        let mut chunks = self.client.cat_range(cid, 0, len);
        let read = async {
            let mut prefix = Vec::with_capacity(len);
            while let Some(chunk) = chunks.next().await {
                prefix.extend_from_slice(&chunk?);
            }
            Ok(prefix)
        };
        self.call("cat", Some(cid), read).await
    }

    /// Writes the content of `cid` to `out` and returns the number of bytes written.
    /// Nothing is written when the CID is unknown or the node fails before the first chunk.
    pub async fn cat_to<W>(&self, cid: &str, out: &mut W) -> Result<u64, IpfsError>
    where
        W: AsyncWrite + Unpin,
    {
        let write_error = |source| IpfsError::Write {
            cid: cid.to_owned(),
            source,
        };
        let mut chunks = std::pin::pin!(self.cat(cid).await?);
        let mut written = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            out.write_all(&chunk).await.map_err(write_error)?;
            written += chunk.len() as u64;
        }
        out.flush().await.map_err(write_error)?;
        Ok(written)
    }

    /// Pins `cid` (recursively) so the node keeps it through garbage collection.
    pub async fn pin(&self, cid: &str) -> Result<(), IpfsError> {
        self.call("pin add", Some(cid), self.client.pin_add(cid, true))
            .await
            .map(drop)
    }

    /// Removes the pin of `cid` (when a patient revokes it). The blocks stay until the
    /// node's garbage collector runs; other pins of the same content are unaffected.
    pub async fn unpin(&self, cid: &str) -> Result<(), IpfsError> {
        self.call("pin rm", Some(cid), self.client.pin_rm(cid, true))
            .await
            .map(drop)
    }

    /// Whether `cid` is pinned (directly, recursively or as part of a pinned graph).
    pub async fn is_pinned(&self, cid: &str) -> Result<bool, IpfsError> {
        let listed = self
            .call("pin ls", Some(cid), self.client.pin_ls(Some(cid), None))
            .await;
        match listed {
            Ok(listing) => Ok(!listing.keys.is_empty()),
            Err(IpfsError::NotPinned { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends `request`, waiting for the node at most the timeout; an error names
    /// `operation` and the CID it was about.
    async fn call<T>(
        &self,
        operation: &'static str,
        cid: Option<&str>,
        request: impl Future<Output = Result<T, ipfs_api_backend_hyper::Error>>,
    ) -> Result<T, IpfsError> {
        let context = self.context();
        tokio::time::timeout(self.timeout, request)
            .await
            .map_err(|_| context.timeout_error(operation))?
            .map_err(|e| context.classify(operation, cid, e))
    }

    fn context(&self) -> ErrorContext {
        ErrorContext {
            api_url: self.api_url.clone(),
            timeout: self.timeout,
        }
    }
}

/// The client crate panics on a URL without a scheme and speaks plain HTTP only (the node
/// listens on loopback), so the URL is checked here first.
fn check_api_url(api_url: &str) -> Result<(), &'static str> {
    let authority = api_url
        .strip_prefix("http://")
        .ok_or("expected http://host:port")?
        .trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').ok_or("no port")?;
    if host.is_empty() || authority.contains('/') {
        return Err("expected http://host:port");
    }
    port.parse::<u16>()
        .map_err(|_| "the port is not a number")?;
    Ok(())
}

struct Catting {
    /// `None` once the stream has ended, with or without an error.
    chunks:
        Option<Box<dyn Stream<Item = Result<Bytes, ipfs_api_backend_hyper::Error>> + Send + Unpin>>,
    expected: u64,
    received: u64,
    cid: String,
    context: ErrorContext,
}

/// What an error message needs to know about the client, detached so `cat`'s stream can
/// outlive the borrow of the client.
#[derive(Clone)]
struct ErrorContext {
    api_url: String,
    timeout: Duration,
}

impl ErrorContext {
    fn timeout_error(&self, operation: &'static str) -> IpfsError {
        IpfsError::Timeout {
            url: self.api_url.clone(),
            operation,
            timeout: self.timeout,
        }
    }

    fn classify(
        &self,
        operation: &'static str,
        cid: Option<&str>,
        error: ipfs_api_backend_hyper::Error,
    ) -> IpfsError {
        use ipfs_api_backend_hyper::Error as E;
        match error {
            E::Api(api) => classify_refusal(operation, cid, api.message),
            E::Client(e) if e.is_connect() => IpfsError::Unreachable {
                url: self.api_url.clone(),
            },
            other => IpfsError::Transport {
                operation,
                source: Box::new(other),
            },
        }
    }
}

/// Maps Kubo's error message for a request about `cid` to a typed error. Kubo has no
/// error codes worth the name (always 0), so its wording is what there is.
fn classify_refusal(operation: &'static str, cid: Option<&str>, message: String) -> IpfsError {
    let Some(cid) = cid else {
        return IpfsError::Refused { operation, message };
    };
    let lower = message.to_ascii_lowercase();
    let cid = cid.to_owned();
    if lower.contains("not pinned") {
        IpfsError::NotPinned { cid }
    } else if lower.contains("not found") || lower.contains("could not find") {
        IpfsError::NotFound { cid }
    } else if lower == "file does not exist" {
        // What `files stat` answers for an /ipfs/ path it cannot parse; a well-formed
        // CID that is absent is "not found" above.
        IpfsError::InvalidCid {
            cid,
            reason: "the node cannot parse it as a CID".into(),
        }
    } else if lower.contains("invalid path")
        || lower.contains("invalid cid")
        || lower.contains("failed to decode")
    {
        IpfsError::InvalidCid {
            cid,
            reason: message,
        }
    } else {
        IpfsError::Refused { operation, message }
    }
}

/// A CID is one path segment, so it cannot reach into another object's path.
fn check_cid(cid: &str) -> Result<(), IpfsError> {
    if cid.contains('/') || cid.trim() != cid || cid.is_empty() {
        return Err(IpfsError::InvalidCid {
            cid: cid.to_owned(),
            reason: "a CID is one path segment, without spaces".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

    #[test]
    fn kubo_messages_map_to_typed_errors() {
        let not_found = classify_refusal(
            "cat",
            Some(CID),
            format!("block was not found locally (offline): ipld: could not find {CID}"),
        );
        assert!(matches!(not_found, IpfsError::NotFound { cid } if cid == CID));

        let not_pinned = classify_refusal(
            "pin rm",
            Some(CID),
            "not pinned or pinned indirectly".into(),
        );
        assert!(matches!(not_pinned, IpfsError::NotPinned { .. }));

        let ls = classify_refusal("pin ls", Some(CID), format!("path '{CID}' is not pinned"));
        assert!(matches!(ls, IpfsError::NotPinned { .. }));

        let invalid = classify_refusal(
            "cat",
            Some("nope"),
            "invalid path \"nope\": path does not have enough components".into(),
        );
        assert!(matches!(invalid, IpfsError::InvalidCid { cid, .. } if cid == "nope"));

        let unparsable = classify_refusal("cat", Some("nope"), "file does not exist".into());
        assert!(matches!(unparsable, IpfsError::InvalidCid { .. }));

        let other = classify_refusal("add", None, "repo full".into());
        assert!(matches!(
            other,
            IpfsError::Refused {
                operation: "add",
                ..
            }
        ));
    }

    #[test]
    fn cli_flags_state_the_add_options() {
        let flags = ADD_CLI_FLAGS.join(" ");
        assert!(flags.contains(&format!("--cid-version={}", ADD_OPTIONS.cid_version)));
        assert!(flags.contains(&format!("--chunker={}", ADD_OPTIONS.chunker)));
        assert!(flags.contains(&format!("--hash={}", ADD_OPTIONS.hash)));
        assert_eq!(flags.contains("--raw-leaves"), ADD_OPTIONS.raw_leaves);
        assert_eq!(flags.contains("--pin"), ADD_OPTIONS.pin);
    }

    #[test]
    fn malformed_url_is_refused_before_any_request() {
        for url in [
            "http://127.0.0.1:notaport",
            "127.0.0.1:5001",
            "https://127.0.0.1:5001",
            "http://127.0.0.1",
            "http://127.0.0.1:5001/api/v0",
        ] {
            let error = Ipfs::new(url, DEFAULT_TIMEOUT).err();
            assert!(matches!(error, Some(IpfsError::InvalidUrl { .. })), "{url}");
        }
        assert!(Ipfs::new("http://127.0.0.1:5001/", DEFAULT_TIMEOUT).is_ok());
    }
}
