//! Mode tcp copy between two sockets, moving to splice(2) once a direction
//! has carried `splice_after` bytes: bulk transfers (file copies, video)
//! then go socket -> pipe -> socket inside the kernel without being copied
//! through user space, while short exchanges keep the cheaper read/write.
//! HAProxy's `option splice-auto` makes the same trade.
//!
//! ```text
//!   src --read--> [buf] --write--> dst            (first splice_after bytes)
//!   src --splice--> [pipe] --splice--> dst        (after that, if a pipe can be had)
//! ```
//! Each direction has its own pipe, filled and emptied fully before the
//! next fill, so an EAGAIN from splice always means the socket is not ready.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;

use super::copy::{drive, Activity, CopyResult, Side};

/// Userspace buffer per direction.
const BUF_SIZE: usize = 16 * 1024;
/// Bytes moved per splice call (the default pipe holds 64 KiB).
const SPLICE_CHUNK: usize = 64 * 1024;

/// A pipe used as the kernel-side buffer of one direction.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let mut fds: [libc::c_int; 2] = [-1, -1];
        // SAFETY: `fds` is a writable array of two c_ints, as pipe2 requires;
        // it lives across the call and pipe2 writes nothing else.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so fds[0] is a new open descriptor that
        // nothing else owns; OwnedFd takes sole ownership and closes it.
        let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        // SAFETY: as above, for the write end fds[1].
        let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        Ok(Self { read, write })
    }
}

/// Moves up to `len` bytes from `from` to `to` without blocking.
fn splice(from: BorrowedFd<'_>, to: BorrowedFd<'_>, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are borrowed, so they stay open for the
    // call; null offsets are required for pipes and sockets and make the
    // kernel use (and move) nothing but the descriptors' own positions.
    let n = unsafe {
        libc::splice(
            from.as_raw_fd(),
            std::ptr::null_mut(),
            to.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        dst.writable().await?;
        match dst.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn half_close(dst: &TcpStream) {
    // The peer may be gone already: not an error of this direction.
    let _ = socket2::SockRef::from(dst).shutdown(std::net::Shutdown::Write);
}

async fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    moved: &AtomicU64,
    activity: &Activity,
    mut splice_after: Option<u64>,
) -> Result<(), (Side, io::Error)> {
    // The buffer exists only while data flows: it is taken when the
    // socket turns readable and given back once a read would block, so an
    // idle connection (most of them, with keep-alive) holds none.
    let mut buf: Option<Vec<u8>> = None;
    loop {
        if splice_after.is_some_and(|limit| moved.load(Ordering::Relaxed) >= limit) {
            match Pipe::new() {
                Ok(pipe) => return splice_loop(src, dst, &pipe, moved, activity).await,
                Err(e) => {
                    tracing::debug!(error = %e, "no pipe for splice: copying in user space");
                    splice_after = None;
                }
            }
        }
        src.readable().await.map_err(|e| (Side::Reader, e))?;
        // Read into spare capacity: no zeroing of a fresh buffer per burst.
        let chunk = buf.get_or_insert_with(|| Vec::with_capacity(BUF_SIZE));
        chunk.clear();
        let n = match src.try_read_buf(chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                buf = None;
                continue;
            }
            Err(e) => return Err((Side::Reader, e)),
        };
        if n == 0 {
            half_close(dst);
            return Ok(());
        }
        write_all(dst, &chunk[..n])
            .await
            .map_err(|e| (Side::Writer, e))?;
        moved.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
}

async fn splice_loop(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &Pipe,
    moved: &AtomicU64,
    activity: &Activity,
) -> Result<(), (Side, io::Error)> {
    loop {
        let n = loop {
            src.readable().await.map_err(|e| (Side::Reader, e))?;
            match src.try_io(Interest::READABLE, || {
                splice(src.as_fd(), pipe.write.as_fd(), SPLICE_CHUNK)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err((Side::Reader, e)),
            }
        };
        if n == 0 {
            half_close(dst);
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            dst.writable().await.map_err(|e| (Side::Writer, e))?;
            match dst.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_fd(), dst.as_fd(), left)
            }) {
                Ok(0) => return Err((Side::Writer, io::ErrorKind::WriteZero.into())),
                Ok(m) => left -= m.min(left),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err((Side::Writer, e)),
            }
        }
        moved.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
}

/// Copies both ways between two TCP sockets (half-close, idle timeout as
/// [`super::copy::copy_bidirectional`]); each direction switches to
/// splice(2) after `splice_after` bytes (`None`: never).
pub async fn copy_tcp(
    client: &TcpStream,
    server: &TcpStream,
    idle: Duration,
    splice_after: Option<u64>,
) -> CopyResult {
    let activity = Activity::new();
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let end = drive(
        pump(client, server, &up, &activity, splice_after),
        pump(server, client, &down, &activity, splice_after),
        &activity,
        idle,
    )
    .await;
    CopyResult {
        client_to_server: up.load(Ordering::Relaxed),
        server_to_client: down.load(Ordering::Relaxed),
        end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::copy::CopyEnd;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A connected pair of loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    async fn transfer(splice_after: Option<u64>) {
        // Input: 3 MiB of patterned bytes client->server, then FIN; the
        // server echoes a digest-free copy back after EOF. Output: identical
        // bytes both ways, counts right, clean close.
        let (mut client, proxy_client) = pair().await;
        let (proxy_server, mut server) = pair().await;
        let proxy = tokio::spawn(async move {
            copy_tcp(
                &proxy_client,
                &proxy_server,
                Duration::from_secs(60),
                splice_after,
            )
            .await
        });
        let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.unwrap();
            client.shutdown().await.unwrap();
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.unwrap();
            back
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "server got {} bytes, different", got.len());
        server.write_all(&got).await.unwrap();
        server.shutdown().await.unwrap();
        drop(server);
        let back = writer.await.unwrap();
        assert!(
            back == data,
            "client got {} bytes back, different",
            back.len()
        );
        let r = proxy.await.unwrap();
        assert_eq!(r.end, CopyEnd::Closed);
        assert_eq!(
            (r.client_to_server, r.server_to_client),
            (data.len() as u64, data.len() as u64)
        );
    }

    #[tokio::test]
    async fn splice_moves_bulk_data_intact() {
        transfer(Some(64 * 1024)).await;
    }

    #[tokio::test]
    async fn splice_from_the_first_byte() {
        transfer(Some(0)).await;
    }

    #[tokio::test]
    async fn user_space_only() {
        transfer(None).await;
    }
}
