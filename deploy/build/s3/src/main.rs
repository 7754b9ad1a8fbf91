//! `medcert-s3 <host:port> <root>`: an S3-compatible server over the directory `<root>`
//! (one sub-directory per bucket), accepting requests signed with the access key
//! `S3_ACCESS_KEY` and the secret key `S3_SECRET_KEY` from its environment; until SIGTERM
//! or SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: S3_ACCESS_KEY=... S3_SECRET_KEY=... medcert-s3 <host:port> <root>";

#[tokio::main]
async fn main() -> ExitCode {
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("medcert-s3: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(root), None) = (args.next(), args.next(), args.next()) else {
        return Err(USAGE.to_owned());
    };
    let address: SocketAddr = address
        .parse()
        .map_err(|e| format!("{address} is not host:port: {e}"))?;
    let env = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set ({USAGE})"));
    let auth = SimpleAuth::from_single(env("S3_ACCESS_KEY")?, env("S3_SECRET_KEY")?);
    let store = s3s_fs::FileSystem::new(PathBuf::from(&root))
        .map_err(|e| format!("cannot serve {root}: {e:?}"))?;
    let mut service = S3ServiceBuilder::new(store);
    service.set_auth(auth);
    let service = service.build();

    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    eprintln!("medcert-s3: serving {root} on {address}");
    let http = Builder::new(TokioExecutor::new());
    loop {
        let socket = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    // A response's last small segment must not wait for the client's
                    // delayed ACK (Nagle): 40 ms per request on a kept connection.
                    if let Err(e) = socket.set_nodelay(true) {
                        eprintln!("medcert-s3: setting TCP_NODELAY: {e}");
                    }
                    socket
                }
                // A connection that failed before it was accepted concerns its client only.
                Err(e) => {
                    eprintln!("medcert-s3: accepting a connection: {e}");
                    continue;
                }
            },
            _ = terminate.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let connection = http
            .serve_connection(TokioIo::new(socket), service.clone())
            .into_owned();
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
}
